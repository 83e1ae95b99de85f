import Dispatch
import Glibc
import Synchronization
import Testing
@testable import ParameterServer

@Suite struct ComputeThreadPriorityTests {
    /// The scheduling policy a job on `thread` runs under, as the kernel has it. Awaited, not waited
    /// for: on a busy machine an idle-priority job may take a while, and a blocked thread of the
    /// cooperative pool would stall the suites beside this one.
    static func policy(of thread: ComputeThread) async -> Int32 {
        await withCheckedContinuation { continuation in
            thread.submit { continuation.resume(returning: sched_getscheduler(0)) }
        }
    }

    @Test func jobsRunOnlyWhenACoreIsIdleOnceAsked() async {
        let thread = ComputeThread()
        defer { thread.stop() }
        #expect(await Self.policy(of: thread) == Int32(SCHED_OTHER))
        #expect(thread.runOnlyWhenIdle())
        #expect(await Self.policy(of: thread) == 5, "SCHED_IDLE")
    }

    /// A thread stopped without waiting drops what was queued: the job running finishes, no other starts.
    @Test func stoppingWithoutWaitingDropsQueuedJobs() {
        let thread = ComputeThread()
        let ran = Mutex(0)
        let release = DispatchSemaphore(value: 0), started = DispatchSemaphore(value: 0), finished = DispatchSemaphore(value: 0)
        thread.submit {
            started.signal()
            release.wait()
            ran.withLock { $0 += 1 }
            finished.signal()
        }
        thread.submit { ran.withLock { $0 += 1 } }
        started.wait()
        thread.stopWithoutWaiting()  // returns while the first job still runs
        release.signal()
        finished.wait()
        thread.submit { ran.withLock { $0 += 1 } }  // after the stop: never runs
        #expect(ran.withLock { $0 } == 1)
    }
}
