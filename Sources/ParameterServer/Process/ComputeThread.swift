import Glibc

/// A thread of its own that runs submitted jobs one at a time, in order.
///
/// The worker's network I/O runs on the reactor's thread and its compute here, so heartbeats and
/// pulls go on while a unit is being trained. A plain pthread with a mutex and a condition variable:
/// Foundation's `Thread` would pull Foundation (and its 38 MB of ICU data) into every executable.
///
/// - Warning: Jobs run on the compute thread; they must hand results back to the event loop with
///   `EventLoop.execute`.
final class ComputeThread: @unchecked Sendable {
    // Safe to share: `jobs`, `stopping` and `joined` are only touched with `mutex` locked, and `thread`
    // is set in init before anyone else can see the object.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var jobs: [@Sendable () -> Void] = []
    private var stopping = false
    private var joined = false
    private var thread = pthread_t()

    init() {
        mutex.initialize(to: pthread_mutex_t())
        condition.initialize(to: pthread_cond_t())
        precondition(pthread_mutex_init(mutex, nil) == 0 && pthread_cond_init(condition, nil) == 0)
        // The thread holds the object alive (a retained reference) until runJobs returns.
        let context = Unmanaged.passRetained(self).toOpaque()
        let status = pthread_create(&thread, nil, { context in
            let computeThread = Unmanaged<ComputeThread>.fromOpaque(context!).takeRetainedValue()
            computeThread.runJobs()
            return nil
        }, context)
        precondition(status == 0, "pthread_create failed: \(String(cString: strerror(status)))")
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Queues a job; after `stop` or `stopWithoutWaiting` it is dropped. Callable from any thread.
    func submit(_ job: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(mutex)
        if !stopping { jobs.append(job) }
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Lets the thread's jobs run only when no other thread of the machine wants a core (Linux's
    /// SCHED_IDLE). One way: without CAP_SYS_NICE (or an RLIMIT_NICE of 20) a thread cannot be given
    /// its normal priority back. Callable from any thread.
    /// - Returns: whether the kernel took the change.
    @discardableResult
    func runOnlyWhenIdle() -> Bool {
        var parameters = sched_param()  // priority 0, as SCHED_IDLE requires
        return pthread_setschedparam(thread, Self.idlePolicy, &parameters) == 0
    }

    /// SCHED_IDLE of <sched.h>, which the Glibc module does not export (its value in Linux's ABI).
    private static let idlePolicy: Int32 = 5

    /// Lets queued jobs finish, ends the thread and waits for it to end, so nothing of it outlives
    /// the call (LeakSanitizer saw the thread and its last job alive at exit otherwise). Callable from
    /// any thread but the compute thread itself, and more than once.
    func stop() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_broadcast(condition)
        let join = !joined
        joined = true
        pthread_mutex_unlock(mutex)
        if join { pthread_join(thread, nil) }
    }

    /// Drops the queued jobs and ends the thread once the job it runs (if any) returns, without waiting
    /// for it: for an idle-priority thread, whose job may not get a core for a long time. The thread
    /// is detached; its job's result must be of no use any more.
    func stopWithoutWaiting() {
        pthread_mutex_lock(mutex)
        stopping = true
        jobs.removeAll()
        pthread_cond_broadcast(condition)
        let detach = !joined
        joined = true
        pthread_mutex_unlock(mutex)
        if detach { pthread_detach(thread) }
    }

    private func runJobs() {
        while true {
            pthread_mutex_lock(mutex)
            while jobs.isEmpty && !stopping {
                pthread_cond_wait(condition, mutex)
            }
            if jobs.isEmpty {
                pthread_mutex_unlock(mutex)
                return
            }
            let job = jobs.removeFirst()
            pthread_mutex_unlock(mutex)
            job()
        }
    }
}
