#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value guarded by a `pthread_mutex_t`: the one lock of Downpour's libraries and tools.
///
/// Used rather than `Synchronization.Mutex`, whose Linux futex implementation ThreadSanitizer cannot
/// see through (it reports accesses under the lock as races: 4 to 7 reports per run of the reactor's
/// cross-thread `execute` with Mutex, none with this), so that `swift test --sanitize=thread` stays
/// meaningful.
public final class Locked<State>: @unchecked Sendable {
    // Why @unchecked Sendable is safe: `state` is only read or written between lock and unlock of `mutex`.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var state: State

    /// Guards `state`.
    public init(_ state: State) {
        self.state = state
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let status = pthread_mutex_init(mutex, nil)
        precondition(status == 0, "pthread_mutex_init failed: \(status)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the state.
    @inline(__always)
    public func withLock<T>(_ body: (inout State) throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }
}
