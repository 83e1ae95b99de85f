import Messages

/// The shards of a sharded session as the server sees them: the map, which shard holds each range,
/// the spares, the workers waiting for the shards, and the state requests in flight.
///
/// Loop thread only, like the runtime that owns it.
struct ShardRoster {
    /// A state request in flight: every range's `ModelState` at one version, joined when the last
    /// arrives.
    struct Gather {
        /// The parts so far, by range.
        var parts: [Int: ModelTrainingState] = [:]
        /// The session as it was when the request was sent, the model still to fill in: the parts will
        /// be of exactly its version, since every shard answers after the updates sent before.
        var checkpoint: SessionCheckpoint
        /// Whether the parts carry the optimiser's state too, so that the result is a snapshot.
        var isSnapshot: Bool
        /// Called on the loop with the session at that version, model included.
        var completion: (SessionCheckpoint) -> Void
        /// Called instead when the request is abandoned (a shard was lost before it answered).
        var abandoned: () -> Void
    }

    /// The ranges: fixed for the session (a lost range is assigned again whole).
    let map: ShardMap
    /// The key of the workers' tickets (`ShardAssignment.ticket_key`), fresh for this server process.
    let ticketKey = ShardTicket.makeKey()
    /// The peer holding each range, nil while none does.
    var holders: [ParameterServerRuntime.Peer?]
    /// Whether each holder has answered a state request sent after its assignment: it holds its range,
    /// so workers sent to it will be let in.
    var ready: [Bool]
    /// The readiness request of each range still waiting for its answer, by request id.
    var readinessRequests: [UInt64: Int] = [:]
    /// Shards that hold no range, in the order they came: the first replaces a lost one.
    var spares: [ParameterServerRuntime.Peer] = []
    /// Workers that said Hello (and proved the token) while the shards were not ready.
    var waitingWorkers: [(peer: ParameterServerRuntime.Peer, hello: Hello)] = []
    /// What ranges are assigned from: the session's start (or the checkpoint it resumed from), later
    /// the last snapshot.
    var baseline: (version: UInt64, state: ModelTrainingState)?
    var nextRequest: UInt64 = 1
    var gathers: [UInt64: Gather] = [:]
    /// Each range's latest figures (from any `ShardState`).
    var figures: [Int: ShardState] = [:]
    /// The session as of the last snapshot, what a lost shard sends it back to; and when it was taken.
    var lastSnapshot: SessionCheckpoint?
    var lastSnapshotAt: ContinuousClock.Instant?
    var snapshotInFlight = false
    /// Times the session went back to a snapshot.
    var rollbacks = 0
    /// A staged push by its worker and unit.
    struct StagedKey: Hashable {
        var worker: WorkerID
        var unit: UInt64
    }

    /// The shards that said they hold each staged slice (`SliceReceived` with a worker id): a worker's
    /// `Push.staged` is taken only once every range's shard has.
    var confirmations: [StagedKey: Set<Int>] = [:]
    /// Staged pushes that came before every shard's confirmation, waiting for it (bounded per worker).
    var heldPushes: [StagedKey: (push: Push, heldAt: ContinuousClock.Instant)] = [:]
    /// Workers that left while the open sync round held a push of theirs: their other slices are
    /// discarded once the round is applied, not before.
    var deferredDiscards: Set<WorkerID> = []

    init(configuration: ServerConfiguration, parameterCount: Int) {
        let count = max(1, configuration.shards)
        map = ShardMap.balanced(parameterCount: parameterCount, shards: count)
        holders = Array(repeating: nil, count: count)
        ready = Array(repeating: false, count: count)
    }

    /// Every range is held, and every holder has answered since its assignment.
    var isReady: Bool { ready.allSatisfy { $0 } }

    /// The holders now, present ones only.
    var presentHolders: [(index: Int, peer: ParameterServerRuntime.Peer)] {
        holders.enumerated().compactMap { index, peer in peer.map { (index, $0) } }
    }

    /// The map as a Welcome carries it: every range with its holder's address.
    var endpoints: [ShardEndpoint] {
        map.ranges.map { range in
            var endpoint = ShardEndpoint()
            endpoint.index = UInt32(range.index)
            endpoint.offset = UInt64(range.offset)
            endpoint.count = UInt64(range.count)
            if let address = holders[range.index]?.shardAddress {
                endpoint.host = address.host
                endpoint.port = UInt32(address.port)
            }
            return endpoint
        }
    }

    /// A fresh request id.
    mutating func makeRequestID() -> UInt64 {
        defer { nextRequest += 1 }
        return nextRequest
    }

    /// The figures summed over the ranges: frame bytes in and out, and the staleness of applied slices.
    var totals: (bytesIn: UInt64, bytesOut: UInt64, stalenessMean: Double, stalenessMax: UInt64, refused: UInt64) {
        var totals: (bytesIn: UInt64, bytesOut: UInt64, stalenessMean: Double, stalenessMax: UInt64, refused: UInt64) = (0, 0, 0, 0, 0)
        for state in figures.values {
            totals.bytesIn &+= state.bytesIn
            totals.bytesOut &+= state.bytesOut
            totals.stalenessMean += state.stalenessMean / Double(max(1, figures.count))
            totals.stalenessMax = max(totals.stalenessMax, state.stalenessMax)
            totals.refused &+= state.refused
        }
        return totals
    }
}

extension ShardMap.Range {
    /// `parameters 0..<203525`, for logs.
    var text: String { "parameters \(offset)..<\(offset + count)" }
}
