/// When a worker in an async or ssp session asks the server for fresh weights.
///
/// A unit's update is applied `staleness` versions after the weights it trained from. Asking when a
/// unit starts (prefetching) never leaves the worker idle, but the next unit then starts from weights
/// that lack everything pushed while this one trained, this worker's own push among them: with 4
/// workers at 8 local steps that measured 8.4 versions of staleness, against 4.9 when the worker asks
/// right after its push and waits for the answer (MLP-512, sign pushes, sign deltas; and 97.9% against
/// 97.7% at the end of 5 epochs once the outer optimiser took momentum 0.3). Waiting costs a round
/// trip per unit, which is nothing on a LAN and a lot on a long link; `auto` measures both and chooses.
public enum PullTiming: String, Sendable, CaseIterable {
    /// Wait for fresh weights after each push while a pull's round trip stays under
    /// ``PullScheduler/waitFraction`` of a unit's training time; prefetch otherwise.
    case auto
    /// After each push, ask for the weights and start the next unit once they are here.
    case afterPush = "after-push"
    /// Ask when a unit starts; the next unit starts from what arrived meanwhile (the behaviour before
    /// `auto`, and what a client following only the protocol README may do).
    case prefetch
}

/// Chooses unit by unit between waiting for fresh weights and prefetching, from the measured round
/// trips of pulls and training times of units (exponential moving averages).
public struct PullScheduler: Sendable, Equatable {
    /// The largest share of a unit's training time that `auto` lets a worker wait for fresh weights.
    public static let waitFraction = 0.25
    /// The share under which a prefetching `auto` worker waits again: lower than ``waitFraction``, so
    /// that a round trip near the bound, moving a little from unit to unit, does not make the worker
    /// switch at every unit.
    public static let returnFraction = 0.2
    /// The weight of a new measurement in the averages.
    static let smoothing = 0.2

    public let timing: PullTiming
    /// The average time from sending a `Pull` to its answer, in seconds; nil before the first answer.
    public private(set) var roundTrip: Double?
    /// The average training time of a unit, in seconds; nil before the first unit.
    public private(set) var unitTime: Double?
    /// What `auto` does now; it changes only when the wait crosses a bound (see ``returnFraction``).
    private var waiting = true

    public init(timing: PullTiming) {
        self.timing = timing
    }

    /// Whether the next fetch asks after the push and waits, rather than when the unit starts. `auto`
    /// waits until it has measured both (the first answers tell), then while the wait is cheap.
    public var waitsAfterPush: Bool {
        switch timing {
        case .afterPush: return true
        case .prefetch: return false
        case .auto: return waiting
        }
    }

    /// Records a pull answered `duration` after it was sent.
    public mutating func pullAnswered(after duration: Duration) {
        roundTrip = Self.average(roundTrip, duration.seconds)
        chooseAgain()
    }

    /// Records a unit that took `duration` to train.
    public mutating func unitTrained(in duration: Duration) {
        unitTime = Self.average(unitTime, duration.seconds)
        chooseAgain()
    }

    /// `auto` waits until it has measured both (the first answers tell), then until the wait passes
    /// ``waitFraction`` of a unit, and prefetches until it falls under ``returnFraction``.
    private mutating func chooseAgain() {
        guard let roundTrip, let unitTime else { return }
        let share = roundTrip / unitTime
        if waiting && share > Self.waitFraction {
            waiting = false
        } else if !waiting && share <= Self.returnFraction {
            waiting = true
        }
    }

    private static func average(_ old: Double?, _ sample: Double) -> Double {
        guard let old else { return sample }
        return old + smoothing * (sample - old)
    }
}
