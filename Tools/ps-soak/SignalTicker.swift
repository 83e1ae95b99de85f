#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The soak's clock and its ears: sleeps between polls, waking early when a child exits or someone
/// asks ps-soak to stop.
///
/// The soak is a sequence (start the fleet, calibrate, run the session, stop, check), so it polls in
/// one thread rather than running an event loop. SIGINT, SIGTERM and SIGCHLD are blocked and taken
/// with `sigtimedwait`: no handler runs at an arbitrary moment, a child's exit ends a wait at once, and
/// Ctrl-C is remembered until the soak gets round to stopping.
///
/// - Warning: Create it on the main thread before any other thread starts, so that every thread
///   inherits the blocked mask and none of them takes these signals' default action.
final class SignalTicker {
    private var signals = sigset_t()
    /// The stop signal received (SIGINT or SIGTERM), if any.
    private(set) var stopSignal: Int32?

    init() {
        sigemptyset(&signals)
        for signal in [SIGINT, SIGTERM, SIGCHLD] { sigaddset(&signals, signal) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)
    }

    /// Whether SIGINT or SIGTERM has arrived.
    var stopRequested: Bool { stopSignal != nil }

    /// Sleeps for `duration`, or less when a signal arrives.
    func wait(upTo duration: Duration) {
        guard duration > .zero else { return }
        let (seconds, attoseconds) = duration.components
        var timeout = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        let received = sigtimedwait(&signals, nil, &timeout)
        if received == SIGINT || received == SIGTERM, stopSignal == nil {
            stopSignal = received
        }
    }
}
