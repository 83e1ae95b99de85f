#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process started with `posix_spawn`, signalled by PID and reaped with `waitpid`: a worker
/// of `ps-fleet`'s, or a server or fleet of `ps-soak`'s.
///
/// Not Foundation's `Process`: each child gets a process group of its own (so a terminal's Ctrl-C
/// reaches only the supervising tool, which then stops its children once, in order; a worker that got
/// SIGINT twice would quit without saying goodbye), and the supervisor reaps its children itself, when
/// it chooses, so that every child is known to be gone before it exits.
///
/// - Warning: Not thread-safe: use it from one thread (the supervisor's loop).
public final class ChildProcess {
    /// What the supervisor calls it: `fleet-3`, `ps-server 2`.
    public let name: String
    public let pid: pid_t
    /// Where its standard output and error go.
    public let logPath: String
    /// When it was started.
    public let started: ContinuousClock.Instant
    /// How it ended, once reaped.
    public private(set) var termination: Termination? {
        didSet { ended = .now }
    }
    /// When it was reaped.
    public private(set) var ended: ContinuousClock.Instant?

    private init(name: String, pid: pid_t, logPath: String) {
        self.name = name
        self.pid = pid
        self.logPath = logPath
        started = .now
    }

    /// Starts `executable` with `arguments`, its output going to `logPath` (truncated first).
    ///
    /// The child gets standard input from /dev/null, a process group of its own, no blocked signals and
    /// the default action for SIGINT, SIGTERM and SIGPIPE (a parent's blocked and ignored signals
    /// survive `exec`), and this process's environment plus `environment` (`NAME=value` entries).
    /// - Throws: ``SpawnError`` if the executable or the log file cannot be opened.
    public static func spawn(executable: String, arguments: [String], name: String, logPath: String,
                             environment: [String] = []) throws(SpawnError) -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var inherited: [String] = []
        var entry = environ
        while let variable = entry.pointee {
            inherited.append(String(cString: variable))
            entry += 1
        }
        let envp: [UnsafeMutablePointer<CChar>?] = (inherited + environment).map { strdup($0) } + [nil]
        defer { envp.forEach { free($0) } }
        var pid = pid_t()
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard status == 0 else {
            throw SpawnError("cannot start \(executable) (log \(logPath)): \(String(cString: strerror(status)))")
        }
        return ChildProcess(name: name, pid: pid, logPath: logPath)
    }

    /// Sends `signal` unless the child was reaped already (its PID may belong to someone else by then).
    public func send(_ signal: Int32) {
        guard termination == nil else { return }
        kill(pid, signal)
    }

    /// Reaps the child if it has exited, without blocking.
    /// - Returns: How it ended, or nil while it still runs.
    @discardableResult
    public func reap() -> Termination? {
        if let termination { return termination }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid {
            termination = Termination(waitStatus: status)
        } else if result < 0 && errno == ECHILD {
            // Someone else reaped it: it is gone all the same.
            termination = .unknown
        }
        return termination
    }

    /// `fleet-3 (pid 1234)`.
    public var label: String { "\(name) (pid \(pid))" }

    /// The last `count` lines of its log, to show why it failed.
    public func logTail(_ count: Int) -> [String] {
        guard let file = fopen(logPath, "r") else { return [] }
        defer { fclose(file) }
        var lines: [String] = []
        var buffer = [CChar](repeating: 0, count: 4096)
        while fgets(&buffer, Int32(buffer.count), file) != nil {
            lines.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                .trimmingSuffix("\n"))
            if lines.count > count { lines.removeFirst() }
        }
        return lines
    }
}

/// How a child process ended.
public enum Termination: CustomStringConvertible, Equatable, Sendable {
    /// It exited by itself, with this status.
    case exited(Int32)
    /// A signal with this number ended it.
    case signalled(Int32)
    /// Reaped by someone else: the status is lost.
    case unknown

    /// Decodes a `waitpid` status (the `WIFEXITED` macros are not imported into Swift).
    public init(waitStatus status: Int32) {
        let signal = status & 0x7f
        self = signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }

    /// `status 0`, `killed by signal 9`: how a tool reports it.
    public var description: String {
        switch self {
        case .exited(let code): "status \(code)"
        case .signalled(let signal): "killed by signal \(signal)"
        case .unknown: "status unknown"
        }
    }
}

/// A child could not be started.
public struct SpawnError: Error, CustomStringConvertible {
    /// What could not be started, and why.
    public let description: String

    /// Creates an error that says `description`.
    public init(_ description: String) {
        self.description = description
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
