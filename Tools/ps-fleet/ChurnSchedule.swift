import Foundation
import Learning

/// What one churn event does to the worker (or shard) it picks.
enum ChurnAction: Equatable {
    /// SIGKILL: a crash, the server notices the closed connection and requeues the worker's units.
    case kill
    /// SIGINT: a graceful leave, the worker says goodbye first.
    case interrupt
}

/// The fleet's random choices, drawn from one seeded generator so the same seed and fleet size give
/// the same sequence of intervals, victims and actions on every run.
///
/// Each event draws, in this order: the interval until it happens, the slot of the worker it hits
/// (slots are stable: a replacement takes its victim's slot) and whether it kills or interrupts.
/// Drawing all three every time keeps the stream aligned whatever `killFraction` is.
struct ChurnSchedule {
    /// The mean interval between churn events.
    let meanInterval: Duration
    /// The share of events that SIGKILL rather than SIGINT, in 0...1.
    let killFraction: Double
    private var generator: Xoshiro256

    /// The stream of the workers' churn.
    static let workerStream: UInt64 = 0xC4_0121
    /// The stream of the shards' churn: apart from the workers', so adding shards leaves the workers'
    /// schedule for a seed as it was.
    static let shardStream: UInt64 = 0x54_A2D5

    /// - Parameters:
    ///   - meanInterval: The mean time between events (exponentially distributed, as independent failures are).
    ///   - killFraction: The share of events that kill rather than interrupt.
    ///   - seed: Seeds every choice.
    ///   - stream: Which of the seed's streams to draw from (``workerStream`` or ``shardStream``).
    init(meanInterval: Duration, killFraction: Double, seed: UInt64, stream: UInt64 = workerStream) {
        self.meanInterval = meanInterval
        self.killFraction = killFraction
        // A stream of its own, so per-worker fault seeds derived from the same seed stay independent.
        generator = Xoshiro256(seed: SplitMix64.derive(seed, stream))
    }

    /// The time until the next event: exponential with the configured mean, clamped to a tenth and to
    /// five times the mean, so a run neither fires events back to back nor stalls for minutes.
    mutating func nextInterval() -> Duration {
        let mean = meanInterval.seconds
        let exponential = -mean * log(1 - generator.nextUnit())
        return .seconds(min(max(exponential, mean / 10), mean * 5))
    }

    /// The slot, in `0..<count`, of the worker the next event hits.
    mutating func nextVictim(among count: Int) -> Int {
        generator.next(below: count)
    }

    /// Whether the next event kills or interrupts its victim.
    mutating func nextAction() -> ChurnAction {
        generator.nextUnit() < killFraction ? .kill : .interrupt
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`, for printing and arithmetic.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
