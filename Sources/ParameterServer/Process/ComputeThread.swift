import Foundation

/// A thread of its own that runs submitted jobs one at a time, in order.
///
/// The worker's network I/O runs on the reactor's thread and its compute here, so heartbeats and
/// pulls go on while a unit is being trained.
///
/// - Warning: Jobs run on the compute thread; they must hand results back to the event loop with
///   `EventLoop.execute`.
final class ComputeThread: @unchecked Sendable {
    // Safe to share: `jobs` and `stopping` are only touched with `condition` locked.
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopping = false
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

    /// Lets queued jobs finish, then ends the thread. Callable from any thread.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func runJobs() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping {
                condition.wait()
            }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }
}
