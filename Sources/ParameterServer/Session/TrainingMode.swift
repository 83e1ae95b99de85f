/// How the server turns workers' updates into new model versions.
public enum TrainingMode: String, Sendable, CaseIterable, Codable {
    /// Rounds: one update from every active worker, averaged, applied once.
    case sync
    /// Every update is applied as it arrives, whatever weights it was computed on.
    case async
    /// Stale synchronous parallel: a worker may run at most K clocks ahead of the slowest.
    case ssp
}

/// What asynchronous mode does with an update computed on old weights.
public enum StalenessPolicy: String, Sendable, CaseIterable, Codable {
    /// Plain asynchronous SGD: stale updates are applied like fresh ones.
    case none
    /// The learning rate is divided by the staleness (Zhang et al., "Staleness-aware Async-SGD", 2016).
    case inverse
    /// Updates staler than the bound are dropped and their work unit goes back to the queue.
    case bound
}
