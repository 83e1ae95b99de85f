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
    /// Staleness-scaled outer steps (after Liu et al. 2024, "Asynchronous Local-SGD Training for Language
    /// Modeling"): an update staler than the workers present plus one is applied at
    /// `(workers + 2) / (staleness + 1)` of its size, fresher ones whole. Workers that ask for weights
    /// right after their push see about `workers` versions of staleness and keep the whole rate;
    /// prefetching ones (about twice that) take about half. The default with local steps in async mode.
    case scaled

    /// The factor an update of `staleness` versions is applied at, with `workers` taking part.
    public func scale(staleness: UInt64, workers: Int) -> Float {
        switch self {
        case .none, .bound: 1
        case .inverse: 1 / Float(max(1, staleness))
        case .scaled: min(1, Float(max(1, workers) + 2) / Float(staleness + 1))
        }
    }
}
