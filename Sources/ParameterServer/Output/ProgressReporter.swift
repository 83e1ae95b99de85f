#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Prints a session's progress: one line per epoch, a live bar on a terminal, and log lines.
///
/// On a terminal the bar is redrawn in place on standard output and cleared before any other line;
/// otherwise only whole lines are printed, so logs and pipes stay clean.
///
/// - Warning: Not thread-safe; call it from one thread (the server's event loop).
public final class ProgressReporter {
    /// One epoch's figures.
    public struct EpochLine: Sendable {
        public var epoch: Int
        public var epochs: Int
        public var updatesPerSecond: Double
        public var samplesPerSecond: Double
        public var activeWorkers: Int
        public var stalenessMean: Double
        public var stalenessMax: UInt64
        public var trainLoss: Double?
        public var testLoss: Double
        public var testAccuracy: Double
        public var elapsedSeconds: Double

        public init(epoch: Int, epochs: Int, updatesPerSecond: Double, samplesPerSecond: Double, activeWorkers: Int,
                    stalenessMean: Double, stalenessMax: UInt64, trainLoss: Double?, testLoss: Double,
                    testAccuracy: Double, elapsedSeconds: Double) {
            self.epoch = epoch
            self.epochs = epochs
            self.updatesPerSecond = updatesPerSecond
            self.samplesPerSecond = samplesPerSecond
            self.activeWorkers = activeWorkers
            self.stalenessMean = stalenessMean
            self.stalenessMax = stalenessMax
            self.trainLoss = trainLoss
            self.testLoss = testLoss
            self.testAccuracy = testAccuracy
            self.elapsedSeconds = elapsedSeconds
        }

        /// The line as printed.
        public var text: String {
            let f = SummaryLine.format
            return "epoch \(epoch + 1)/\(epochs)  updates/s \(f(updatesPerSecond, 0))  samples/s \(f(samplesPerSecond, 0))"
                + "  workers \(activeWorkers)  staleness mean \(f(stalenessMean, 2)) max \(stalenessMax)"
                + "  loss \(trainLoss.map { f($0, 4) } ?? "-")  test_loss \(f(testLoss, 4))"
                + "  test_acc \(f(testAccuracy * 100, 2))%  elapsed \(f(elapsedSeconds, 1))s"
        }
    }

    private let isTerminal: Bool
    private var barVisible = false

    /// - Parameter isTerminal: whether to draw a live bar; by default, whether standard output is a terminal.
    public init(isTerminal: Bool = isatty(STDOUT_FILENO) != 0) {
        self.isTerminal = isTerminal
    }

    /// Prints a line (a log line or an epoch line), keeping the bar below it on a terminal.
    public func line(_ text: String) {
        clearBar()
        print(text)
        flush()
    }

    /// Redraws the live bar; does nothing when standard output is not a terminal.
    /// - Parameters:
    ///   - fraction: progress through the session, 0...1.
    ///   - detail: a short status after the bar.
    public func bar(fraction: Double, detail: String) {
        guard isTerminal else { return }
        let width = 30
        let filled = max(0, min(width, Int((fraction * Double(width)).rounded(.down))))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let percent = SummaryLine.format(min(1, max(0, fraction)) * 100, digits: 0)
        print("\r\u{1B}[2K[\(bar)] \(percent)% \(detail)", terminator: "")
        barVisible = true
        flush()
    }

    /// Removes the bar, if shown.
    public func clearBar() {
        guard barVisible else { return }
        print("\r\u{1B}[2K", terminator: "")
        barVisible = false
    }

    private func flush() {
        fflush(nil)  // all output streams; `stdout` itself is a C global Swift 6 treats as unsafe
    }
}
