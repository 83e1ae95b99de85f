import Foundation
import Testing

/// One of the package's executables, started for a test and ended by PID when the test is done.
///
/// Output is collected line by line on a background thread; tests wait for a line to appear (an event),
/// never for a fixed time. Every wait has a deadline, and `deinit` kills the process if the test forgot.
final class RunningProcess: @unchecked Sendable {
    // Safe to share: `lines` and `exited` are only touched with `condition` locked; `process` is set
    // before any other thread sees this object.
    private let process = Process()
    private let condition = NSCondition()
    private var lines: [String] = []
    private var partial = Data()
    private var terminated = false
    private var terminatedAt: Date?
    private var exitStatus: Int32 = -1
    private var outputClosed = false
    /// The process ended and everything it printed has been read.
    private var exited: Bool { terminated && outputClosed }
    let name: String

    /// The directory holding the built executables: the one the test bundle was built into.
    static let productsDirectory: URL = {
        var directory = Bundle.main.bundleURL
        // The test runner is `.build/<triple>/<config>/DownpourPackageTests.xctest` on Linux.
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("ps-server").path) {
            let parent = directory.deletingLastPathComponent()
            if parent.path == directory.path { break }
            directory = parent
        }
        return directory
    }()

    /// Starts `executable` (a product name such as `ps-server`) with `arguments`.
    init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        name = executable
        // An absolute path runs as it is (an interpreter, say); a bare name is one of this build's products.
        process.executableURL = executable.hasPrefix("/")
            ? URL(fileURLWithPath: executable) : Self.productsDirectory.appendingPathComponent(executable)
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        // A token in the developer's shell would change every handshake; tests give one explicitly.
        merged["DOWNPOUR_TOKEN"] = nil
        merged.merge(environment) { $1 }
        process.environment = merged
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                self?.markOutputClosed()
            } else {
                self?.append(data)
            }
        }
        process.terminationHandler = { [weak self] process in
            guard let self else { return }
            self.condition.lock()
            self.markTerminated(status: process.terminationStatus)
            self.condition.broadcast()
            self.condition.unlock()
        }
        try process.run()
    }

    deinit {
        if !terminated { kill(pid, SIGKILL) }
    }

    var pid: Int32 { process.processIdentifier }

    /// Everything printed so far.
    var output: [String] {
        condition.lock()
        defer { condition.unlock() }
        return lines
    }

    /// Waits until a line containing `text` has been printed, and returns it.
    /// - Throws: `ProcessTestError.timedOut` after `timeout`, or `.exited` if the process ended first.
    @discardableResult
    func waitForLine(containing text: String, timeout: Duration = .seconds(60)) throws -> String {
        try waitForLine(timeout: timeout, description: text) { $0.contains(text) }
    }

    /// Waits until `count` printed lines contain `text`.
    func waitForLines(containing text: String, count: Int, timeout: Duration = .seconds(60)) throws {
        var seen = 0
        try waitForLine(timeout: timeout, description: "\(count) lines containing \"\(text)\"") { line in
            if line.contains(text) { seen += 1 }
            return seen >= count
        }
    }

    /// Waits until a printed line satisfies `predicate`, and returns it.
    ///
    /// `predicate` sees each line once, in order; it must not call back into this object.
    @discardableResult
    func waitForLine(timeout: Duration, description: String, _ predicate: (String) -> Bool) throws -> String {
        let deadline = Date().addingTimeInterval(timeout.seconds)
        condition.lock()
        defer { condition.unlock() }
        var checked = 0
        while true {
            while checked < lines.count {
                if predicate(lines[checked]) { return lines[checked] }
                checked += 1
            }
            if exited { throw ProcessTestError.exited(name, waitingFor: description, output: lines) }
            if Date() >= deadline { throw ProcessTestError.timedOut(name, waitingFor: description, output: lines) }
            waitForEvent(until: deadline)
        }
    }

    /// Waits for the process to exit and returns its status.
    func waitForExit(timeout: Duration = .seconds(120)) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout.seconds)
        condition.lock()
        defer { condition.unlock() }
        while !exited {
            if Date() >= deadline {
                throw ProcessTestError.timedOut(name, waitingFor: "exit (terminated: \(terminated), output closed: \(outputClosed))", output: lines)
            }
            waitForEvent(until: deadline)
        }
        return exitStatus
    }

    /// Sends a signal to the process (SIGKILL to crash it, SIGINT or SIGTERM to stop it gracefully).
    func send(_ signal: Int32) {
        condition.lock()
        let alive = !terminated
        condition.unlock()
        if alive { kill(pid, signal) }
    }

    /// Kills the process if it is still running and waits (boundedly) for it.
    func end() {
        send(SIGKILL)
        _ = try? waitForExit(timeout: .seconds(30))
    }

    /// Asks the process to stop with SIGINT and kills it only if it has not exited within `grace`:
    /// for a supervisor such as ps-fleet, whose children (in process groups of their own) would be
    /// orphaned by a SIGKILL when a test fails before stopping it.
    func endGracefully(grace: Duration = .seconds(20)) {
        send(SIGINT)
        if (try? waitForExit(timeout: grace)) == nil { end() }
    }

    /// Waits for output or exit, at most a tenth of a second, then checks on the process directly.
    ///
    /// Foundation's termination notice has been seen to go missing when many processes end at once
    /// under a parallel test run; the child is then a zombie nobody reaps. So every wait also looks
    /// for that, reaps it, and stops waiting for end-of-output a little after the process has ended.
    /// Call with `condition` locked.
    private func waitForEvent(until deadline: Date) {
        _ = condition.wait(until: min(deadline, Date().addingTimeInterval(0.1)))
        if !terminated, !process.isRunning {
            markTerminated(status: process.terminationStatus)
        } else if !terminated, isZombie(pid) {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                // WIFEXITED ? WEXITSTATUS : 128 + WTERMSIG, as a shell reports it.
                markTerminated(status: status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F))
            }
        }
        // Ten seconds, not two: on a loaded 2-core machine the pipe's reader has been seen to lag more
        // than two seconds behind a process that printed a long --help and exited, and the test then
        // read a truncated output. End-of-output normally arrives at once; the grace only bounds a
        // pipe that a grandchild still holds.
        if terminated, !outputClosed, let since = terminatedAt, Date().timeIntervalSince(since) > 10 {
            outputClosed = true
        }
    }

    private func markTerminated(status: Int32) {
        guard !terminated else { return }
        terminated = true
        terminatedAt = Date()
        exitStatus = status
    }

    private func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    private func markOutputClosed() {
        condition.lock()
        if !partial.isEmpty {
            lines.append(String(decoding: partial, as: UTF8.self))
            partial.removeAll()
        }
        outputClosed = true
        condition.broadcast()
        condition.unlock()
    }

    private func append(_ data: Data) {
        condition.lock()
        defer { condition.unlock() }
        partial.append(data)
        while let newline = partial.firstIndex(of: UInt8(ascii: "\n")) {
            let line = String(decoding: partial[partial.startIndex..<newline], as: UTF8.self)
            lines.append(line)
            partial.removeSubrange(partial.startIndex...newline)
        }
        condition.broadcast()
    }
}

/// Why a process test gave up, with what the process printed.
enum ProcessTestError: Error, CustomStringConvertible {
    case timedOut(String, waitingFor: String, output: [String])
    case exited(String, waitingFor: String, output: [String])

    var description: String {
        switch self {
        case .timedOut(let name, let text, let output):
            return "\(name): timed out waiting for \"\(text)\"; output:\n" + output.suffix(40).joined(separator: "\n")
        case .exited(let name, let text, let output):
            return "\(name): exited while waiting for \"\(text)\"; output:\n" + output.suffix(40).joined(separator: "\n")
        }
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
