/// Timing for `ps-bench codec`: batches sized to a minimum time, a warm-up, the median of runs.
enum CodecTiming {
    /// Folded from every batch's result so that the optimiser cannot drop the work.
    nonisolated(unsafe) static var checksum: UInt64 = 0

    /// The median nanoseconds per operation over `runs` timed batches, after one warm-up batch.
    static func medianNanosecondsPerOperation(
        runs: Int, minimumNanoseconds: Double, _ body: (Int) -> UInt64
    ) -> Double {
        var iterations = 1
        while true {
            let elapsed = time(iterations, body)
            if elapsed >= minimumNanoseconds { break }
            let scale = elapsed > 0 ? min(max(minimumNanoseconds / elapsed * 1.2, 2), 100) : 100
            iterations = Int(Double(iterations) * scale)
        }
        _ = time(iterations, body)
        let samples = (0..<runs).map { _ in time(iterations, body) / Double(iterations) }.sorted()
        return samples[samples.count / 2]
    }

    private static func time(_ iterations: Int, _ body: (Int) -> UInt64) -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        checksum &+= body(iterations)
        let elapsed = clock.now - start
        return Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
    }

    /// Three significant figures, at least one decimal below 100.
    static func format(_ value: Double) -> String {
        let decimals = value < 10 ? 2 : value < 100 ? 1 : 0
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        if decimals == 0 { return String(Int(rounded)) }
        let whole = Int(rounded)
        let fraction = Int(((rounded - Double(whole)) * scale).rounded())
        let digits = String(fraction)
        return "\(whole)." + String(repeating: "0", count: max(decimals - digits.count, 0)) + digits
    }
}
