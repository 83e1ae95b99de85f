import Reactor
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("EventLoop", .timeLimit(.minutes(1)))
struct EventLoopTests {
    @Test("execute runs work on the loop thread")
    func executeOnLoop() async throws {
        try await withLoop { loop in
            #expect(!loop.inEventLoop)
            let onLoop = try await loop.submit { loop.inEventLoop }
            #expect(onLoop)
        }
    }

    @Test("execute from many threads at once runs every item once, in order per thread")
    func executeFromManyThreads() async throws {
        try await withLoop { loop in
            let threads = 8
            let perThread = 2_000
            let seen = LoopBox([[Int]](repeating: [], count: threads))
            let done = Promise<Void>()
            let remaining = Counter()
            var spawned: [pthread_t] = []
            final class Job: @unchecked Sendable {
                // Safe: immutable after init.
                let body: () -> Void
                init(_ body: @escaping () -> Void) { self.body = body }
            }
            for index in 0..<threads {
                let job = Job {
                    for item in 0..<perThread {
                        loop.execute {
                            seen.value[index].append(item)
                            if remaining.increment() == threads * perThread { done.succeed(()) }
                        }
                    }
                }
                var thread = pthread_t()
                let status = pthread_create(&thread, nil, { argument in
                    Unmanaged<Job>.fromOpaque(argument!).takeRetainedValue().body()
                    return nil
                }, Unmanaged.passRetained(job).toOpaque())
                #expect(status == 0)
                spawned.append(thread)
            }
            for thread in spawned { pthread_join(thread, nil) }
            try await done.get()
            let result = try await loop.submit { seen.value }
            for list in result { #expect(list == Array(0..<perThread)) }
        }
    }

    @Test("timers fire in deadline order, and cancelled ones do not fire")
    func timerOrder() async throws {
        try await withLoop { loop in
            let order = LoopBox<[Int]>([])
            let done = Promise<[Int]>()
            loop.execute {
                loop.scheduleTimer(after: .milliseconds(30)) { order.value.append(3) }
                loop.scheduleTimer(after: .milliseconds(10)) { order.value.append(1) }
                loop.scheduleTimer(after: .milliseconds(20)) { order.value.append(2) }
                loop.scheduleTimer(after: .milliseconds(20)) { order.value.append(22) }
                let cancelled = loop.scheduleTimer(after: .milliseconds(15)) { order.value.append(-1) }
                cancelled.cancel()
                loop.scheduleTimer(after: .milliseconds(60)) { done.succeed(order.value) }
            }
            let observed1 = try await done.get()
            #expect(observed1 == [1, 2, 22, 3])
        }
    }

    @Test("a repeating timer fires until cancelled")
    func repeatingTimer() async throws {
        try await withLoop { loop in
            let done = Promise<Int>()
            loop.execute {
                let count = LoopBox(0)
                let timer = LoopBox<TimerHandle?>(nil)
                timer.value = loop.scheduleTimer(after: .milliseconds(1), repeating: .milliseconds(2)) {
                    count.value += 1
                    if count.value == 5 {
                        timer.value?.cancel()
                        // Give a wrongly still-active timer the chance to fire again.
                        loop.scheduleTimer(after: .milliseconds(20)) { done.succeed(count.value) }
                    }
                }
            }
            let observed2 = try await done.get()
            #expect(observed2 == 5)
            let observed3 = try await loop.submit { loop.openHandleCount }
            #expect(observed3 == 0)
        }
    }

    @Test("a signal watcher sees SIGUSR1")
    func signal() async throws {
        try await withLoop { loop in
            let seen = Promise<Void>()
            try await loop.submit {
                _ = try loop.watchSignal(SIGUSR1) { seen.succeed(()) }
            }
            kill(getpid(), SIGUSR1)
            try await seen.get()
        }
    }

    @Test("stop with connections, timers and listeners open leaves no handle behind")
    func shutdownClosesEverything() async throws {
        let loop = try EventLoop.startOnNewThread(name: "shutdown-test")
        let closes = Counter()
        let port = try await startEchoServer(on: loop) { _ in closes.increment() }
        let clients = 10
        let echoed = Counter()
        let allEchoed = Promise<Void>()
        for _ in 0..<clients {
            _ = try await connectClient(on: loop, port: port) { connection in
                connection.onFrame = { _ in if echoed.increment() == clients { allEchoed.succeed(()) } }
                connection.onClose = { error in
                    if error?.kind == .loopStopped { closes.increment() }
                }
                connection.send(frame: [1, 2, 3])
            }
        }
        try await allEchoed.get()
        let open = try await loop.submit {
            loop.scheduleTimer(after: .seconds(3600)) {}
            return loop.openHandleCount
        }
        // Listener, 10 server connections, 10 clients, one timer.
        #expect(open == 22)
        loop.stop()
        try loop.join()  // throws if uv_loop_close found a handle
        #expect(loop.openHandleCount == 0)
        #expect(closes.value == 2 * clients)
    }

    #if DEBUG
    @Test("a loop-only call from another thread stops the program in debug builds")
    func wrongThreadIsCaught() async {
        await #expect(processExitsWith: .failure) {
            let loop = try EventLoop.startOnNewThread(name: "wrong-thread")
            let running = Counter()
            loop.execute { running.increment() }
            // Bounded wait for the loop to run (the check applies from then on).
            for _ in 0..<5_000 where running.value == 0 { usleep(1_000) }
            loop.scheduleTimer(after: .seconds(1)) {}
        }
    }
    #endif

    @Test("run on the calling thread, busy polling, until a timer stops it", arguments: [false, true])
    func runOnCallingThread(busyPolling: Bool) throws {
        let loop = try EventLoop()
        let fired = LoopBox(0)
        // Set up before run(), as a main whose thread is the loop does.
        loop.scheduleTimer(after: .milliseconds(5), repeating: .milliseconds(5)) {
            fired.value += 1
            if fired.value == 3 { loop.stop() }
        }
        try loop.run(busyPolling: busyPolling)
        #expect(fired.value == 3)
        #expect(!loop.inEventLoop)
    }

    @Test("a loop that never ran is torn down cleanly")
    func neverRan() throws {
        _ = try EventLoop()
    }
}
