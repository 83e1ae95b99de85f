#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
