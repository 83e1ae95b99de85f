import ArgumentParser
import Reactor

/// `--seconds`, `--warmup` and `--busy-poll`: how long an echo client (`echo`, `handshakes`)
/// measures, and how its loop waits.
struct EchoTimingOptions: ParsableArguments {
    @Option(help: "How long to measure, in seconds.")
    var seconds = 5.0

    @Option(help: "How long to warm up before measuring, in seconds.")
    var warmup = 1.0

    @Flag(inversion: .prefixedNo, help: "Poll for I/O without sleeping (takes the client's core; keeps the client from limiting what it measures).")
    var busyPoll = true

    func validate() throws {
        guard seconds > 0, warmup >= 0 else { throw ValidationError("--seconds must be positive and --warmup not negative") }
    }
}

/// A client benchmark's warm-up and measured window on one loop: it stops the loop when the window
/// closes, or at the first failure.
///
/// - Warning: Loop thread only.
final class MeasurementWindow {
    enum Phase { case preparing, warmingUp, measuring, done }

    private let loop: EventLoop
    private let timing: EchoTimingOptions
    private(set) var phase = Phase.preparing
    private var start: UInt64 = 0
    private var end: UInt64 = 0
    private var failure: String?

    init(loop: EventLoop, timing: EchoTimingOptions) {
        self.loop = loop
        self.timing = timing
    }

    /// Warms up, then runs `onMeasure` and measures; runs `onEnd` when the window closes.
    func begin(onMeasure: @escaping () -> Void, onEnd: @escaping () -> Void = {}) {
        phase = .warmingUp
        loop.scheduleTimer(after: .milliseconds(Int64(timing.warmup * 1000))) { [self] in
            phase = .measuring
            onMeasure()
            start = monotonicNanoseconds()
            loop.scheduleTimer(after: .milliseconds(Int64(timing.seconds * 1000))) { [self] in
                end = monotonicNanoseconds()
                onEnd()
                phase = .done
                loop.stop()
            }
        }
    }

    /// Ends the run with `message`, unless it ended already: once done, the loop stopping fails the
    /// connections still open, which is no failure.
    func fail(_ message: String) {
        guard failure == nil, phase != .done else { return }
        failure = message
        phase = .done
        loop.stop()
    }

    /// The measured window's length.
    var elapsedSeconds: Double { Double(end - start) / 1e9 }

    /// Throws the failure, if there was one, as `"<benchmark> failed: <message>"`.
    func checkSucceeded(_ benchmark: String) throws {
        if let failure { throw ValidationError("\(benchmark) failed: \(failure)") }
    }
}
