import Foundation

/// Lines written on one thread (a runtime's log, on its loop) and awaited on another (the test's),
/// each wait bounded.
final class AwaitedLines: @unchecked Sendable {
    // Why @unchecked Sendable is safe: `lines` is only touched holding `condition`.
    private let condition = NSCondition()
    private var lines: [String] = []

    func append(_ line: String) {
        condition.lock()
        lines.append(line)
        condition.broadcast()
        condition.unlock()
    }

    /// The first line written, if any.
    var first: String? {
        condition.lock()
        defer { condition.unlock() }
        return lines.first
    }

    /// Waits (at most 30 s) for `count` lines that satisfy `matches`.
    func wait(count: Int = 1, for matches: (String) -> Bool) -> Bool {
        let deadline = Date(timeIntervalSinceNow: 30)
        condition.lock()
        defer { condition.unlock() }
        while lines.count(where: matches) < count {
            if !condition.wait(until: deadline) { return lines.count(where: matches) >= count }
        }
        return true
    }
}
