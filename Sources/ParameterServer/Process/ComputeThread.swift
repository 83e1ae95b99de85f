import Foundation

/// A thread of its own that runs submitted jobs one at a time, in order.
///
/// The worker's network I/O runs on the reactor's thread and its compute here, so heartbeats and
/// pulls go on while a unit is being trained.
///
/// - Warning: Jobs run on the compute thread; they must hand results back to the event loop with
///   `EventLoop.execute`.
final class ComputeThread: @unchecked Sendable {
    // Safe to share: `jobs`, `stopping`, `ended` and `thread` are only touched with `condition` locked
    // (`thread` is set in init before the thread can run).
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopping = false
    private var ended = false
    private var thread: Thread?

    init(name: String) {
        // The thread keeps the object alive until stop() lets it return.
        let thread = Thread { self.runJobs() }
        thread.name = name
        self.thread = thread
        thread.start()
    }

    /// Queues a job. Callable from any thread.
    func submit(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Lets queued jobs finish, ends the thread and waits for it to end, so nothing of it outlives
    /// the call (LeakSanitizer saw the thread and its last job alive at exit otherwise). Callable from
    /// any thread but the compute thread itself.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !ended {
            condition.wait()
        }
        condition.unlock()
    }

    private func runJobs() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping {
                condition.wait()
            }
            if jobs.isEmpty {
                ended = true
                thread = nil
                condition.broadcast()
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }
}
