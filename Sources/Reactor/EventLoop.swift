import CLibUV
import Locking
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Something the loop must close when it stops: a connection, a listener, a timer, a watcher.
///
/// - Warning: Loop thread only.
protocol LoopResource: AnyObject {
    /// Closes the underlying handle(s) now, because the loop is stopping.
    func closeForShutdown()
}

/// An event loop: one `uv_loop_t`, run on one thread, with every handle it owns.
///
/// Create a loop, then either call ``run()`` on a thread you own (a `main` whose thread is the loop)
/// or use ``startOnNewThread(name:)``. Everything that touches a handle runs on the loop's thread;
/// other threads hand work over with ``execute(_:)``. ``stop()`` closes every handle the loop owns
/// and makes ``run()`` return once `uv_loop_close` succeeded.
///
/// Creating the first loop sets SIGPIPE to be ignored for the whole process (see `ignoreBrokenPipes`).
///
/// ```swift
/// let loop = try EventLoop.startOnNewThread(name: "ps-server")
/// loop.execute {
///     _ = try? FrameListener(loop: loop, host: "0.0.0.0", port: 7000, configuration: .init()) { connection in
///         connection.onFrame = { payload in connection.send(frame: payload) }
///     }
/// }
/// ...
/// loop.stop()
/// try loop.join()
/// ```
///
/// - Warning: Only ``execute(_:)``, ``stop()``, ``inEventLoop`` and ``join()`` may be called from any
///   thread. Everything else in the reactor must be called on the loop thread.
public final class EventLoop: @unchecked Sendable {
    // Why @unchecked Sendable is safe: the state that other threads touch lives in `shared` (a pthread mutex)
    // and `loopThread` (an Atomic); `uv_async_send`, the one thread-safe libuv call, is only made while
    // holding `shared`'s lock and only while the async handle is open. Every other stored property is
    // touched on the loop thread only, which `assertInEventLoop()` checks in debug builds.

    private enum LifeCycle {
        case idle, running, stopping, stopped
    }

    private struct Shared {
        var queue: [@Sendable () -> Void] = []
        var lifeCycle: LifeCycle = .idle
        var stopRequested = false
        var thread: pthread_t?
        var runError: ReactorError?
        var joined = false
    }

    /// The libuv loop. Loop thread only (apart from `uv_async_send` on `wakeup`).
    let uvLoop: UnsafeMutablePointer<uv_loop_t>
    private let wakeup: UnsafeMutablePointer<uv_async_t>
    private let beforePoll: UnsafeMutablePointer<uv_prepare_t>
    private let afterPoll: UnsafeMutablePointer<uv_check_t>
    private let shared = Locked(Shared())
    private let loopThread = Atomic<UInt>(0)

    // MARK: Loop-thread state

    /// Handles the loop closes when it stops, by identity.
    private var resources: [ObjectIdentifier: any LoopResource] = [:]
    // `@exclusivity(unchecked)` on the per-frame state below: only the loop thread touches it and no
    // access to it overlaps another, and dynamic exclusivity checks on it cost ~8% of the echo
    // server's CPU (Benchmarks/reactor.md). An attribute, not a compiler flag, so packages that depend
    // on the Reactor by version can still build it.
    /// Connections with queued writes to hand to the kernel before the loop next blocks.
    @exclusivity(unchecked) private var dirtyConnections: [TCPConnection] = []
    @exclusivity(unchecked) private var spareDirtyConnections: [TCPConnection] = []
    /// Whether the loop began closing its handles.
    private(set) var isShuttingDown = false
    private var loopClosed = false

    /// The buffer every connection reads into (one loop thread, so one buffer serves them all).
    let readBuffer: UnsafeMutableRawBufferPointer
    /// Scratch space for the `uv_buf_t` list of one write.
    let writeBufs: UnsafeMutablePointer<uv_buf_t>
    /// How many buffers one write hands to the kernel at most.
    static let maxBufsPerWrite = 64
    /// Size of a pooled write chunk; small frames are packed into these.
    static let chunkSize = 64 * 1024
    private var chunkPool: [UnsafeMutableRawPointer] = []
    private static let maxPooledChunks = 64
    /// Buffers of large writes, kept for the next ones (oldest first); see ``takeLargeBuffer(minimumCapacity:)``.
    private var largeBuffers: [(base: UnsafeMutableRawPointer, capacity: Int)] = []
    private var largeBufferBytes = 0
    /// At most this many bytes, in at most `maxLargeBuffers` buffers, wait for reuse.
    static let maxLargeBufferBytes = 64 << 20
    static let maxLargeBuffers = 32
    /// Scratch memory of the loop's TLS connections, allocated when the first one needs it.
    private(set) lazy var tlsBuffers = TLSBuffers()

    /// Creates a loop that is not running yet.
    ///
    /// - Throws: ``ReactorError`` if libuv cannot set up the loop.
    public init() throws {
        _ = Self.ignoreBrokenPipes
        uvLoop = .allocate(capacity: 1)
        wakeup = .allocate(capacity: 1)
        beforePoll = .allocate(capacity: 1)
        afterPoll = .allocate(capacity: 1)
        readBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
        writeBufs = .allocate(capacity: Self.maxBufsPerWrite)
        do {
            try uvCheck(uv_loop_init(uvLoop), "uv_loop_init")
        } catch {
            uvLoop.deallocate(); wakeup.deallocate(); beforePoll.deallocate(); afterPoll.deallocate()
            readBuffer.deallocate(); writeBufs.deallocate()
            throw error
        }
        uvLoop.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        // These three cannot fail once uv_loop_init succeeded (libuv returns 0 unconditionally).
        uv_async_init(uvLoop, wakeup) { handle in
            EventLoop.from(handle!.pointee.loop).drainQueue()
        }
        uv_prepare_init(uvLoop, beforePoll)
        uv_prepare_start(beforePoll) { handle in EventLoop.from(handle!.pointee.loop).flushDirtyConnections() }
        uv_unref(downpour_prepare_as_handle(beforePoll))
        uv_check_init(uvLoop, afterPoll)
        uv_check_start(afterPoll) { handle in EventLoop.from(handle!.pointee.loop).flushDirtyConnections() }
        uv_unref(downpour_check_as_handle(afterPoll))
    }

    deinit {
        if !loopClosed {
            // Never ran (or run() failed before closing): close our own handles and the loop now.
            if !isShuttingDown {
                uv_close(downpour_async_as_handle(wakeup), nil)
                uv_close(downpour_prepare_as_handle(beforePoll), nil)
                uv_close(downpour_check_as_handle(afterPoll), nil)
            }
            uv_run(uvLoop, UV_RUN_NOWAIT)
            uv_loop_close(uvLoop)
        }
        for chunk in chunkPool { chunk.deallocate() }
        for buffer in largeBuffers { buffer.base.deallocate() }
        uvLoop.deallocate(); wakeup.deallocate(); beforePoll.deallocate(); afterPoll.deallocate()
        readBuffer.deallocate(); writeBufs.deallocate()
    }

    /// libuv writes with write(2), so a peer that closed its end raises SIGPIPE, whose default action
    /// ends the process. Like SwiftNIO, the reactor ignores SIGPIPE process-wide (once, on the first
    /// loop); the write then fails with EPIPE and closes that connection only.
    private static let ignoreBrokenPipes: Void = {
        signal(SIGPIPE, SIG_IGN)
    }()

    static func from(_ loop: UnsafeMutablePointer<uv_loop_t>!) -> EventLoop {
        Unmanaged<EventLoop>.fromOpaque(loop.pointee.data!).takeUnretainedValue()
    }

    // MARK: Running

    /// Runs the loop on the calling thread until ``stop()`` has closed every handle.
    ///
    /// - Parameter busyPolling: Never sleep in the kernel waiting for I/O: poll without blocking, over
    ///   and over. That takes a whole core but saves the wake-up on every event; it is meant for
    ///   benchmark clients (which must not limit what they measure) on a core of their own.
    /// - Throws: ``ReactorError`` if `uv_loop_close` fails afterwards (a handle was left open), or if
    ///   the loop already ran.
    /// - Warning: Call once. The calling thread becomes the loop thread until this returns.
    public func run(busyPolling: Bool = false) throws {
        let alreadyRan = shared.withLock { state -> Bool in
            guard state.lifeCycle == .idle else { return true }
            state.lifeCycle = .running
            return false
        }
        if alreadyRan {
            throw ReactorError(.invalidArgument, operation: "EventLoop.run", message: "the loop already ran")
        }
        loopThread.store(currentThreadID(), ordering: .releasing)
        defer { loopThread.store(0, ordering: .releasing) }
        if busyPolling {
            // uv_run returns 0 once nothing is left open, as after stop().
            while uv_run(uvLoop, UV_RUN_NOWAIT) != 0 {}
        } else {
            uv_run(uvLoop, UV_RUN_DEFAULT)
        }
        // The loop only runs out of work once everything was closed by shutdown().
        shared.withLock { $0.lifeCycle = .stopped }
        let status = uv_loop_close(uvLoop)
        if status < 0 {
            let open = openHandleCount
            throw ReactorError(.libuv(status), operation: "uv_loop_close",
                               message: "\(String(cString: uv_strerror(status))) (\(open) handle(s) still open)")
        }
        loopClosed = true
    }

    /// Creates a loop and runs it on a new thread.
    ///
    /// - Parameter name: The thread's name (shown by debuggers and `top -H`; at most 15 bytes are kept).
    /// - Returns: The running loop. Stop it with ``stop()`` and wait for it with ``join()``.
    /// - Throws: ``ReactorError`` if the loop or the thread cannot be created.
    public static func startOnNewThread(name: String) throws -> EventLoop {
        let loop = try EventLoop()
        final class Start {
            let loop: EventLoop
            let name: String
            init(loop: EventLoop, name: String) { self.loop = loop; self.name = name }
        }
        let start = Unmanaged.passRetained(Start(loop: loop, name: name)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { argument in
            let start = Unmanaged<Start>.fromOpaque(argument!).takeRetainedValue()
            downpour_set_thread_name(start.name)
            var failure: ReactorError?
            do { try start.loop.run() } catch let error as ReactorError { failure = error } catch {}
            start.loop.shared.withLock { $0.runError = failure }
            return nil
        }, start)
        if status != 0 {
            Unmanaged<Start>.fromOpaque(start).release()
            throw ReactorError(uvCode: -Int32(status), operation: "pthread_create")
        }
        loop.shared.withLock { $0.thread = thread }
        return loop
    }

    /// Waits until a loop started with ``startOnNewThread(name:)`` has stopped.
    ///
    /// - Throws: The error ``run()`` threw on the loop thread, if any (`uv_loop_close` failing because a
    ///   handle was left open, say).
    /// - Warning: Any thread but the loop's own. Returns at once for a loop not started on its own thread.
    public func join() throws {
        precondition(!inEventLoop, "EventLoop.join() called on the loop's own thread would never return")
        let thread = shared.withLock { state -> pthread_t? in
            defer { state.joined = true }
            return state.joined ? nil : state.thread
        }
        if let thread { pthread_join(thread, nil) }
        if let error = shared.withLock({ $0.runError }) { throw error }
    }

    /// Closes every handle the loop owns, then lets ``run()`` return.
    ///
    /// Connections are closed at once (queued writes are dropped; their `onClose` gets a
    /// `.loopStopped` error), timers are cancelled, pending connects fail with `.loopStopped`.
    /// Work already handed to ``execute(_:)`` still runs first. Calling it again does nothing.
    ///
    /// - Warning: Any thread. Returns before the loop has stopped; use ``join()`` to wait.
    public func stop() {
        if inEventLoop {
            shutdown()
            return
        }
        shared.withLock { state in
            state.stopRequested = true
            if state.lifeCycle == .idle || state.lifeCycle == .running { uv_async_send(wakeup) }
        }
    }

    /// Whether the calling thread is this loop's thread (only ever true while ``run()`` runs).
    ///
    /// - Warning: Any thread.
    public var inEventLoop: Bool {
        loopThread.load(ordering: .acquiring) == currentThreadID()
    }

    /// Stops the program if the calling thread is not this loop's thread (in every build).
    public func preconditionInEventLoop(file: StaticString = #fileID, line: UInt = #line) {
        precondition(inEventLoop, "this must be called on the event loop's thread", file: file, line: line)
    }

    /// Checks, in debug builds only, that the calling thread is the loop thread.
    ///
    /// Before the loop first runs, any thread may set it up (a `main` creates its listener, then calls
    /// ``run()``), so the check passes then too.
    @inline(__always)
    func assertInEventLoop(file: StaticString = #fileID, line: UInt = #line) {
        assert(inEventLoop || shared.withLock { $0.lifeCycle == .idle },
               "this must be called on the event loop's thread", file: file, line: line)
    }

    // MARK: Handing work over

    /// Runs `work` on the loop thread, soon.
    ///
    /// Work runs in the order it was handed over. Called on the loop thread itself, the work runs in a
    /// later iteration, never re-entrantly. Once the loop has begun stopping, work is dropped.
    ///
    /// - Parameter work: What to run on the loop thread.
    /// - Warning: Any thread.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        shared.withLock { state in
            guard state.lifeCycle == .idle || state.lifeCycle == .running else { return }
            state.queue.append(work)
            uv_async_send(wakeup)
        }
    }

    /// Runs everything handed over so far (not what that work hands over in turn: a bounded batch).
    private func drainQueue() {
        let (batch, stopRequested) = shared.withLock { state -> ([@Sendable () -> Void], Bool) in
            let batch = state.queue
            state.queue.removeAll(keepingCapacity: true)
            return (batch, state.stopRequested)
        }
        for work in batch { work() }
        if stopRequested { shutdown() }
    }

    /// Begins stopping: runs outstanding work, then closes every handle.
    private func shutdown() {
        assertInEventLoop()
        guard !isShuttingDown else { return }
        let batch = shared.withLock { state -> [@Sendable () -> Void] in
            let batch = state.queue
            state.queue = []
            return batch
        }
        for work in batch { work() }
        isShuttingDown = true
        shared.withLock { state in
            // From here on nobody calls uv_async_send: the handle is about to close.
            state.lifeCycle = .stopping
            state.queue = []
        }
        // Closing may unregister other resources (a connector closes its connection), so close until empty.
        var rounds = 0
        while let first = resources.first, rounds < 1_000_000 {
            resources.removeValue(forKey: first.key)
            first.value.closeForShutdown()
            rounds += 1
        }
        uv_close(downpour_async_as_handle(wakeup), nil)
        uv_close(downpour_prepare_as_handle(beforePoll), nil)
        uv_close(downpour_check_as_handle(afterPoll), nil)
    }

    // MARK: Resources

    func register(_ resource: any LoopResource) {
        resources[ObjectIdentifier(resource)] = resource
    }

    func unregister(_ resource: any LoopResource) {
        resources.removeValue(forKey: ObjectIdentifier(resource))
    }

    /// How many handles of the reactor's own kinds (TCP, timer, signal) are open on this loop.
    ///
    /// Handles already being closed (waiting for their close callback) and the loop's internal
    /// wake-up and flush handles are not counted. Once the loop stopped, this is zero: ``run()``
    /// (and so ``join()``) throws if `uv_loop_close` found any handle left.
    ///
    /// - Warning: Loop thread only (or after the loop stopped).
    public var openHandleCount: Int {
        // uv_loop_close poisons the loop structure in debug builds of libuv: nothing is open anyway.
        if loopClosed { return 0 }
        var count = 0
        uv_walk(uvLoop, { handle, argument in
            let type = uv_handle_get_type(handle)
            if type != UV_ASYNC && type != UV_PREPARE && type != UV_CHECK && uv_is_closing(handle) == 0 {
                argument!.assumingMemoryBound(to: Int.self).pointee += 1
            }
        }, &count)
        return count
    }

    // MARK: Write flushing

    /// Asks for `connection`'s queued writes to go to the kernel before the loop next waits.
    @inline(__always)
    func markDirty(_ connection: TCPConnection) {
        dirtyConnections.append(connection)
    }

    private func flushDirtyConnections() {
        guard !dirtyConnections.isEmpty else { return }
        swap(&dirtyConnections, &spareDirtyConnections)
        for connection in spareDirtyConnections { connection.flush() }
        spareDirtyConnections.removeAll(keepingCapacity: true)
    }

    // MARK: Write chunk pool

    func takeChunk() -> UnsafeMutableRawPointer {
        if let chunk = chunkPool.popLast() { return chunk }
        return .allocate(byteCount: Self.chunkSize, alignment: 16)
    }

    func recycleChunk(_ chunk: UnsafeMutableRawPointer) {
        if chunkPool.count < Self.maxPooledChunks {
            chunkPool.append(chunk)
        } else {
            chunk.deallocate()
        }
    }

    // MARK: Large write buffers

    /// A buffer for one large write (more than a quarter of a chunk): a kept one of at least
    /// `minimumCapacity` bytes and at most twice that, else a new one rounded up to 64 KiB, so that
    /// frames of nearly the same size share buffers.
    ///
    /// Why keep them: a parameter server's frames (weights, fp32 updates) are hundreds of KB to MBs,
    /// above glibc's mmap threshold (128 KiB), so a fresh buffer per frame is mapped and unmapped
    /// each time, and every page of it faults and is cleared again: it halved the rate of a fleet
    /// pushing whole models (Benchmarks/parameter-server-fleet.md).
    func takeLargeBuffer(minimumCapacity: Int) -> (base: UnsafeMutableRawPointer, capacity: Int) {
        var best: Int?
        for index in largeBuffers.indices {
            let capacity = largeBuffers[index].capacity
            guard capacity >= minimumCapacity, capacity <= 2 * minimumCapacity else { continue }
            if best.map({ capacity < largeBuffers[$0].capacity }) ?? true { best = index }
        }
        if let best {
            let buffer = largeBuffers.remove(at: best)
            largeBufferBytes -= buffer.capacity
            return buffer
        }
        let capacity = (minimumCapacity + 0xFFFF) & ~0xFFFF
        return (.allocate(byteCount: capacity, alignment: 16), capacity)
    }

    /// Keeps a large write's buffer (from ``takeLargeBuffer(minimumCapacity:)``, or any buffer from
    /// `UnsafeMutableRawPointer.allocate`) for the next one, making room by freeing the oldest kept;
    /// frees it instead when it alone exceeds the bound.
    func recycleLargeBuffer(_ base: UnsafeMutableRawPointer, capacity: Int) {
        guard capacity <= Self.maxLargeBufferBytes else {
            base.deallocate()
            return
        }
        while !largeBuffers.isEmpty,
              largeBuffers.count >= Self.maxLargeBuffers || largeBufferBytes + capacity > Self.maxLargeBufferBytes {
            let oldest = largeBuffers.removeFirst()
            largeBufferBytes -= oldest.capacity
            oldest.base.deallocate()
        }
        largeBuffers.append((base, capacity))
        largeBufferBytes += capacity
    }

    /// Bytes of large write buffers kept for reuse now (for tests and benchmarks).
    var keptLargeBufferBytes: Int { largeBufferBytes }

    /// The loop's clock in milliseconds (`uv_now`), cached per iteration.
    var now: UInt64 { uv_now(uvLoop) }
}

extension Duration {
    /// Whole milliseconds, rounded up so that a short positive duration never becomes zero.
    var uvMilliseconds: UInt64 {
        let (seconds, attoseconds) = components
        if seconds < 0 { return 0 }
        let millis = UInt64(seconds) * 1000 + UInt64(attoseconds / 1_000_000_000_000_000)
        let remainder = attoseconds % 1_000_000_000_000_000
        return remainder > 0 ? millis + 1 : millis
    }
}

/// The calling thread's identity as an integer (`pthread_t` is an integer on Linux).
@inline(__always)
private func currentThreadID() -> UInt {
    UInt(pthread_self())
}
