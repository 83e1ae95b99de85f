#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Reactor

/// Makes SIGINT and SIGTERM deliverable to this process.
///
/// A process inherits its parent's blocked-signal mask across `exec`; some launchers (test runners,
/// supervisors) start children with these signals blocked, and then Ctrl-C and `kill` would never
/// reach the event loop's watchers. Call this first thing in `main`, before any thread is started, so
/// every thread inherits the unblocked mask.
public func unblockTerminationSignals() {
    var signals = sigset_t()
    sigemptyset(&signals)
    sigaddset(&signals, SIGINT)
    sigaddset(&signals, SIGTERM)
    pthread_sigmask(SIG_UNBLOCK, &signals, nil)
}

extension EventLoop {
    /// Watches SIGINT and SIGTERM for a long-lived client (a worker, a shard): the first calls `stop`,
    /// which ends the client gracefully; a second stops the loop at once with `status` 130, without
    /// waiting for connections to close.
    /// - Returns: the watchers, which must be kept alive while the loop runs.
    /// - Throws: `ReactorError` when a signal cannot be watched.
    func watchInterrupts(status: ExitStatus, stop: @escaping () -> Void) throws -> [SignalWatcher] {
        var interrupts = 0
        let interrupted = { [unowned self] in
            interrupts += 1
            if interrupts > 1 {
                status.code = 130
                self.stop()
            } else {
                stop()
            }
        }
        return [try watchSignal(SIGINT, interrupted), try watchSignal(SIGTERM, interrupted)]
    }
}
