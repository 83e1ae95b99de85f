/// When a run evaluates on the test set besides its epoch ends: every N steps (a server's applied
/// updates, a single process's batches), every S seconds of training, or both, for a time to accuracy
/// finer than an epoch.
///
/// A step count suits comparing runs by work done; seconds suit comparing runs whose steps differ in
/// size (a fleet's units against one process's batches) on one time axis. The seconds are training
/// seconds, so time spent evaluating does not move the next mark.
public struct EvaluationCadence: Sendable, Equatable {
    /// Evaluate after every this many steps; nil: not by steps.
    public let everySteps: UInt64?
    /// Evaluate once training seconds pass each multiple of this; nil: not by time.
    public let intervalSeconds: Double?
    /// The next multiple of `intervalSeconds` to pass; set at the first check, so that a run resumed
    /// at some training time starts counting from there rather than evaluating at once.
    private var nextMark: Double?

    /// - Parameters:
    ///   - everySteps: at least 1, or nil.
    ///   - intervalSeconds: positive and finite, or nil.
    public init(everySteps: UInt64? = nil, intervalSeconds: Double? = nil) {
        precondition(everySteps.map { $0 >= 1 } ?? true, "evaluate at least every step")
        precondition(intervalSeconds.map { $0 > 0 && $0.isFinite } ?? true, "the interval must be positive and finite")
        self.everySteps = everySteps
        self.intervalSeconds = intervalSeconds
    }

    /// Whether it asks for any evaluation besides epoch ends.
    public var isEnabled: Bool { everySteps != nil || intervalSeconds != nil }

    /// Forgets the next mark, for a run whose training time went back (restored from a snapshot): the
    /// next check sets it from the training time then, as at the start.
    public mutating func restart() {
        nextMark = nil
    }

    /// Whether to evaluate now, after `step` steps and `trainedSeconds` of training; call it after
    /// every step. A mark passed is used up: after a pause longer than several intervals the next
    /// mark is the first multiple after now, so the run evaluates once, not once per mark missed.
    /// When a step and a mark fall due together, that is one evaluation.
    public mutating func isDue(step: UInt64, trainedSeconds: Double) -> Bool {
        let byStep = everySteps.map { step % $0 == 0 } ?? false
        guard let interval = intervalSeconds else { return byStep }
        let following = ((trainedSeconds / interval).rounded(.down) + 1) * interval
        guard let mark = nextMark else {
            nextMark = following
            return byStep
        }
        guard trainedSeconds >= mark else { return byStep }
        nextMark = following
        return true
    }
}
