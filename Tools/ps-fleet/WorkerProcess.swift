#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One `ps-worker` child: started with `posix_spawn`, signalled by PID, reaped with `waitpid`.
///
/// Not Foundation's `Process`: the fleet must put each worker in a process group of its own (so a
/// terminal's Ctrl-C reaches only ps-fleet, which then stops the workers once, gracefully; a worker
/// that got SIGINT twice would quit without saying goodbye), and it reaps children itself, on its
/// own loop, when SIGCHLD arrives, so that every child is known to be gone before it exits.
///
/// - Warning: Loop thread only.
final class WorkerProcess {
    /// The name the worker gives the server, `fleet-<n>`.
    let name: String
    let pid: pid_t
    /// Where the worker's standard output and error go.
    let logPath: String
    /// When the fleet started it.
    let started: ContinuousClock.Instant
    /// How it ended, once reaped.
    private(set) var termination: Termination?

    private init(name: String, pid: pid_t, logPath: String) {
        self.name = name
        self.pid = pid
        self.logPath = logPath
        started = .now
    }

    /// Starts `executable` with `arguments`, its output going to `logPath` (truncated first).
    ///
    /// The child gets standard input from /dev/null, a process group of its own, no blocked signals and
    /// the default action for SIGINT, SIGTERM and SIGPIPE (a parent's ignored signals survive `exec`).
    /// - Throws: ``SpawnError`` if the executable or the log file cannot be opened.
    static func spawn(executable: String, arguments: [String], name: String, logPath: String) throws(SpawnError) -> WorkerProcess {
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
        var pid = pid_t()
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard status == 0 else {
            throw SpawnError("cannot start \(executable) (log \(logPath)): \(String(cString: strerror(status)))")
        }
        return WorkerProcess(name: name, pid: pid, logPath: logPath)
    }

    /// Sends `signal` unless the worker was reaped already (its PID may belong to someone else by then).
    func send(_ signal: Int32) {
        guard termination == nil else { return }
        kill(pid, signal)
    }

    /// Reaps the worker if it has exited, without blocking.
    /// - Returns: How it ended, or nil while it still runs.
    @discardableResult
    func reap() -> Termination? {
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
    var label: String { "\(name) (pid \(pid))" }

    /// The last `count` lines of the worker's log, to show why it failed.
    func logTail(_ count: Int) -> [String] {
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

/// Marks every descriptor above standard error close-on-exec, so workers do not inherit them.
///
/// A descriptor ps-fleet inherited (a launcher's pipe, say) would otherwise stay open as long as any
/// worker lives, and whoever waits for that pipe's end would wait for the workers too. Call it before
/// any thread starts. (`posix_spawn_file_actions_addclosefrom_np` would do this per spawn, but
/// Swift's Glibc module does not import it.)
func closeInheritedDescriptorsOnExec() {
    guard let directory = opendir("/proc/self/fd") else { return }
    defer { closedir(directory) }
    let own = dirfd(directory)
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard let descriptor = Int32(name), descriptor > 2, descriptor != own else { continue }
        let flags = fcntl(descriptor, F_GETFD)
        if flags >= 0 { _ = fcntl(descriptor, F_SETFD, flags | FD_CLOEXEC) }
    }
}

/// How a child process ended.
enum Termination: CustomStringConvertible, Equatable {
    case exited(Int32)
    case signalled(Int32)
    /// Reaped by someone else: the status is lost.
    case unknown

    /// Decodes a `waitpid` status (the `WIFEXITED` macros are not imported into Swift).
    init(waitStatus status: Int32) {
        let signal = status & 0x7f
        self = signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }

    var description: String {
        switch self {
        case .exited(let code): "status \(code)"
        case .signalled(let signal): "killed by signal \(signal)"
        case .unknown: "status unknown"
        }
    }
}

/// A worker could not be started.
struct SpawnError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
