import Dispatch
import Glibc
import Synchronization
import Testing
@testable import ParameterServer

@Suite struct ComputeThreadPriorityTests {
    /// The scheduling policy a job on `thread` runs under.
    static func policy(of thread: ComputeThread) -> Int32 {
        let policy = Mutex<Int32?>(nil)
        let done = DispatchSemaphore(value: 0)
        thread.submit {
            var parameters = sched_param()
            var current: Int32 = -1
            pthread_getschedparam(pthread_self(), &current, &parameters)
            policy.withLock { $0 = current }
            done.signal()
        }
        done.wait()
        return policy.withLock { $0 ?? -1 }
    }

    @Test func jobsRunOnlyWhenIdleUntilTheThreadCompetesAgain() {
        let thread = ComputeThread()
        defer { thread.stop() }
        #expect(Self.policy(of: thread) == Int32(SCHED_OTHER))
        #expect(thread.runOnlyWhenIdle(true))
        #expect(Self.policy(of: thread) == 5, "SCHED_IDLE")
        #expect(thread.runOnlyWhenIdle(false))
        #expect(Self.policy(of: thread) == Int32(SCHED_OTHER))
    }
}
