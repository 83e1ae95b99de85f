import Foundation

/// Reads the lines a child appends to its log file, as they appear (like `tail -f`).
///
/// The soak learns what a server is doing from its log rather than a pipe: a log survives the server
/// being killed, stays on disk for the person reading the soak's results, and cannot fill up and block
/// the server if the soak is slow to read.
final class LogFollower {
    let path: String
    private var offset: UInt64 = 0
    private var partial: [UInt8] = []
    /// Every complete line read so far.
    private(set) var lines: [String] = []

    init(path: String) {
        self.path = path
    }

    /// Reads what has been appended since the last call.
    /// - Returns: The new complete lines (a line still being written waits for its newline).
    @discardableResult
    func poll() -> [String] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: offset)) != nil, let data = try? handle.readToEnd(), !data.isEmpty else { return [] }
        offset += UInt64(data.count)
        partial += data
        var fresh: [String] = []
        while let newline = partial.firstIndex(of: UInt8(ascii: "\n")) {
            fresh.append(String(decoding: partial[..<newline], as: UTF8.self))
            partial.removeSubrange(...newline)
        }
        lines += fresh
        return fresh
    }

    /// The last line read that starts with `prefix`.
    func lastLine(startingWith prefix: String) -> String? {
        lines.last { $0.hasPrefix(prefix) }
    }
}
