/// The rules a session's coordinator follows: how updates become versions and how work is handed out.
///
/// It holds no learning hyper-parameters: the coordinator only decides *whether* and *with what scale*
/// an update is applied; the model host applies it.
public struct SessionPolicy: Sendable, Equatable {
    public var mode: TrainingMode
    public var stalenessPolicy: StalenessPolicy
    /// K: the staleness bound for `bound`, and the clock lead allowed in `ssp` mode.
    public var maxStaleness: Int
    /// Workers connected before training starts (the original tool's "number of clients").
    public var workersToStart: Int
    /// Units a worker may hold at once in async and ssp modes, so it never waits on a round trip.
    public var unitsAhead: Int
    /// A worker silent for longer than this is dropped and its units requeued.
    public var heartbeatTimeout: Duration
    /// A lease expires after `max(leaseFloor, leaseMultiple x p99)` of recent unit times
    /// (see `UnitTimeEstimate`); its unit goes back to the queue.
    public var leaseFloor: Duration = .seconds(5)
    public var leaseMultiple: Double = 3
    /// Whether idle workers get backup copies of the slowest outstanding units at the session's tail
    /// (async and ssp modes; sync rounds never wait for a backup).
    public var backups = true

    /// Whether a routine pull's weights may lag the newest by a stride of versions (fewer deltas, see
    /// `WeightsPublisher`): not under `bound`, where the lag would turn into pushes refused as stale,
    /// and not in sync mode, where every round needs its own version.
    public var pullsMayLag: Bool { stalenessPolicy != .bound && mode != .sync }

    public init(
        mode: TrainingMode,
        stalenessPolicy: StalenessPolicy = .none,
        maxStaleness: Int = 4,
        workersToStart: Int = 1,
        unitsAhead: Int = 2,
        heartbeatTimeout: Duration = .seconds(10)
    ) {
        self.mode = mode
        self.stalenessPolicy = stalenessPolicy
        self.maxStaleness = maxStaleness
        self.workersToStart = workersToStart
        self.unitsAhead = unitsAhead
        self.heartbeatTimeout = heartbeatTimeout
    }
}
