import CLibUV

/// Where a connection's bytes go when a layer above (the frame decoder) reads them itself.
///
/// - Warning: Loop thread only.
protocol StreamReadSink: AnyObject {
    /// Where libuv should read next: the loop's shared read buffer, or memory of the sink's own.
    func readTarget(_ connection: TCPConnection) -> UnsafeMutableRawBufferPointer
    /// `count` bytes arrived at `base` (which `readTarget` returned).
    func didRead(_ connection: TCPConnection, base: UnsafeMutableRawPointer, count: Int)
    /// The peer closed its side. Returns an error if that came at a bad time (mid-frame), else nil.
    func didReadEnd(_ connection: TCPConnection) -> ReactorError?
    /// The connection closed: drop callbacks, so closures that captured the sink free it.
    func connectionDidClose()
}

/// A layer above that holds bytes of its own for the write queue (TLS plaintext waiting to be
/// encrypted) and moves them in just before the queue goes to the kernel.
///
/// - Warning: Loop thread only.
protocol StreamWriteStage: AnyObject {
    /// The connection is about to hand its queue to the kernel: queue what is staged now.
    func stageWillFlush(_ connection: TCPConnection)
}

/// A TCP connection carrying a raw byte stream, with a bounded, coalescing write queue.
///
/// Reads arrive in ``onRead`` (the bytes are valid only during the call). Writes queue up and go to the
/// kernel in one `uv_write` of many buffers (after a `uv_try_write`) before the loop next waits for I/O.
/// Past ``Configuration/writeHighWaterMark`` queued bytes, ``onWritabilityChanged`` says `false`; past
/// ``Configuration/maxQueuedWriteBytes`` the connection closes with a `.writeQueueOverflow` error.
///
/// ``FrameConnection`` builds length-prefixed frames on top of this type.
///
/// - Warning: Loop thread only, every property and method. The `uv_tcp_t` and this object (retained
///   through `handle.data`) live until libuv's close callback; queued write buffers live until their
///   write callback. ``onClose`` runs exactly once, from the close callback.
public final class TCPConnection: LoopResource {
    /// Limits and options for one connection.
    public struct Configuration: Sendable {
        /// Above this many queued write bytes the connection reports itself not writable.
        public var writeHighWaterMark: Int
        /// At or below this many queued write bytes a non-writable connection is writable again.
        public var writeLowWaterMark: Int
        /// The hard bound on queued write bytes; a write past it closes the connection with an error.
        public var maxQueuedWriteBytes: Int
        /// Close the connection with `.idleTimeout` when nothing was read or written for this long.
        public var idleTimeout: Duration?
        /// Disable Nagle's algorithm (`TCP_NODELAY`), as request/response protocols want.
        public var noDelay: Bool

        /// Creates a configuration.
        ///
        /// - Parameters:
        ///   - writeHighWaterMark: Queued bytes above which ``TCPConnection/onWritabilityChanged`` says `false` (1 MiB).
        ///   - writeLowWaterMark: Queued bytes at or below which it says `true` again (half the high-water mark).
        ///   - maxQueuedWriteBytes: The hard per-connection bound on queued bytes (64 MiB).
        ///   - idleTimeout: Close a connection idle this long, or `nil` never to.
        ///   - noDelay: Whether to set `TCP_NODELAY` (yes).
        public init(writeHighWaterMark: Int = 1 << 20, writeLowWaterMark: Int? = nil,
                    maxQueuedWriteBytes: Int = 64 << 20, idleTimeout: Duration? = nil, noDelay: Bool = true) {
            self.writeHighWaterMark = writeHighWaterMark
            self.writeLowWaterMark = writeLowWaterMark ?? writeHighWaterMark / 2
            self.maxQueuedWriteBytes = max(maxQueuedWriteBytes, writeHighWaterMark)
            self.idleTimeout = idleTimeout
            self.noDelay = noDelay
        }
    }

    private enum State {
        /// Reading and writing.
        case open
        /// `close()` was called: flush queued writes, then close the handle.
        case draining
        /// `uv_close` was called; waiting for the close callback.
        case closing
        /// The close callback ran.
        case closed
    }

    /// A piece of memory holding bytes to write: a pooled chunk packed with small frames, or a
    /// buffer of its own for one big frame (from the loop's cache of large buffers, or handed over).
    private struct Chunk {
        var base: UnsafeMutableRawPointer
        var capacity: Int
        var start: Int
        var end: Int
        var pooled: Bool
    }

    /// The loop this connection lives on.
    public let loop: EventLoop
    let tcp: UnsafeMutablePointer<uv_tcp_t>
    let configuration: Configuration
    // `@exclusivity(unchecked)` on the per-frame state below: only the loop thread touches it and no
    // access to it overlaps another, and dynamic exclusivity checks on it cost ~8% of the echo
    // server's CPU (Benchmarks/reactor.md). An attribute, not a compiler flag, so packages that depend
    // on the Reactor by version can still build it.
    @exclusivity(unchecked) private var state = State.open

    /// Runs with the bytes of each read; they are valid only during the call.
    ///
    /// - Warning: Loop thread only. Unused when a ``FrameConnection`` reads this connection.
    public var onRead: ((UnsafeRawBufferPointer) -> Void)?
    /// Runs exactly once, when the connection has closed: `nil` for a clean close (by the peer at a
    /// message boundary, or by us), else the reason (`.loopStopped` when the loop closed it).
    ///
    /// All callbacks are dropped after this one, so closures may capture the connection strongly:
    /// the cycle ends when the connection closes.
    public var onClose: ((ReactorError?) -> Void)?
    /// Runs when the queued write bytes cross the high-water mark (`false`) or drain to the low-water
    /// mark (`true`).
    public var onWritabilityChanged: ((Bool) -> Void)?

    var readSink: (any StreamReadSink)?
    /// Asked to queue its staged bytes before each flush; `nil` (no cost) for plaintext connections.
    var writeStage: (any StreamWriteStage)?
    @exclusivity(unchecked) private var reading = false
    @exclusivity(unchecked) private var readPaused = false
    private var started = false
    private var closeError: ReactorError?
    private var shutdownRequested = false
    private var shutdownSent = false
    private var peerEnded = false

    // Writes.
    /// Chunks sealed for writing, oldest first (the tail chunk not included).
    @exclusivity(unchecked) private var pending: [Chunk] = []
    /// The pooled chunk small writes are appended to; kept across flushes while the kernel takes
    /// everything at once, so a steady stream of small frames touches no array and no allocator.
    @exclusivity(unchecked) private var tail: Chunk?
    @exclusivity(unchecked) private var inFlight: [Chunk] = []
    @exclusivity(unchecked) private var pendingBytes = 0
    @exclusivity(unchecked) private var inFlightBytes = 0
    @exclusivity(unchecked) private var writeInFlight = false
    @exclusivity(unchecked) private var dirty = false
    /// Whether the queue is below the high-water mark (as last reported).
    public private(set) var isWritable = true
    private let writeRequest: UnsafeMutablePointer<uv_write_t>
    private let shutdownRequest: UnsafeMutablePointer<uv_shutdown_t>

    // Idle timeout.
    private var idleTimer: UnsafeMutablePointer<uv_timer_t>?
    /// Bounds a graceful close started by ``close(lingeringAtMost:)``.
    private var lingerTimer: TimerHandle?
    @exclusivity(unchecked) private var lastActivity: UInt64 = 0
    /// Handles (the TCP handle and maybe the idle timer) whose close callbacks are outstanding.
    private var openHandles = 0

    /// The peer's address, as `"127.0.0.1:5000"` or `"[::1]:5000"` (empty if unknown).
    public private(set) var remoteAddress: String = ""

    /// Creates the Swift side of a TCP handle, initialised but not yet connected.
    init(loop: EventLoop, configuration: Configuration) throws(ReactorError) {
        if loop.isShuttingDown {
            throw ReactorError(.loopStopped, operation: "uv_tcp_init", message: "the event loop is stopping")
        }
        self.loop = loop
        self.configuration = configuration
        tcp = .allocate(capacity: 1)
        writeRequest = .allocate(capacity: 1)
        shutdownRequest = .allocate(capacity: 1)
        let status = uv_tcp_init(loop.uvLoop, tcp)
        if status < 0 {
            tcp.deallocate(); writeRequest.deallocate(); shutdownRequest.deallocate()
            throw ReactorError(uvCode: status, operation: "uv_tcp_init")
        }
        openHandles = 1
        tcp.pointee.data = Unmanaged.passRetained(self).toOpaque()
        writeRequest.pointee.data = tcp.pointee.data
        shutdownRequest.pointee.data = tcp.pointee.data
        loop.register(self)
    }

    deinit {
        for chunk in pending { Self.release(chunk, loop: nil) }
        for chunk in inFlight { Self.release(chunk, loop: nil) }
        if let tail { Self.release(tail, loop: nil) }
        writeRequest.deallocate()
        shutdownRequest.deallocate()
    }

    @inline(__always)
    static func from(_ stream: UnsafeMutablePointer<uv_stream_t>!) -> TCPConnection {
        Unmanaged<TCPConnection>.fromOpaque(stream.pointee.data!).takeUnretainedValue()
    }

    @inline(__always)
    static func from(_ handle: UnsafeMutablePointer<uv_handle_t>!) -> TCPConnection {
        Unmanaged<TCPConnection>.fromOpaque(handle.pointee.data!).takeUnretainedValue()
    }

    var stream: UnsafeMutablePointer<uv_stream_t> { downpour_tcp_as_stream(tcp) }

    /// Called once the socket is connected (accepted or connected out): options, address, idle timer.
    /// Reading starts with ``startReading()``, after the owner installed its callbacks.
    func didConnect() {
        if configuration.noDelay { uv_tcp_nodelay(tcp, 1) }
        remoteAddress = Self.peerName(of: tcp)
        lastActivity = loop.now
        if let idle = configuration.idleTimeout {
            let timer = UnsafeMutablePointer<uv_timer_t>.allocate(capacity: 1)
            uv_timer_init(loop.uvLoop, timer)  // returns 0 unconditionally
            timer.pointee.data = tcp.pointee.data
            idleTimer = timer
            openHandles += 1
            let millis = max(idle.uvMilliseconds, 1)
            uv_timer_start(timer, { timer in
                Unmanaged<TCPConnection>.fromOpaque(timer!.pointee.data!).takeUnretainedValue().idleTimerFired()
            }, millis, 0)
        }
    }

    /// Starts delivering reads (unless paused meanwhile).
    func startReading() {
        started = true
        if !readPaused { beginReading() }
    }

    // MARK: Reading

    /// Stops reading from the socket until ``resumeReading()``.
    ///
    /// Bytes already read (the rest of the current read) are still delivered.
    ///
    /// - Warning: Loop thread only.
    public func pauseReading() {
        loop.assertInEventLoop()
        readPaused = true
        if reading {
            uv_read_stop(stream)
            reading = false
        }
    }

    /// Resumes reading after ``pauseReading()``.
    ///
    /// - Warning: Loop thread only.
    public func resumeReading() {
        loop.assertInEventLoop()
        readPaused = false
        if started { beginReading() }
    }

    private func beginReading() {
        guard state == .open, !reading, !peerEnded else { return }
        let status = uv_read_start(stream, { handle, suggested, buf in
            let connection = TCPConnection.from(handle)
            let target: UnsafeMutableRawBufferPointer
            if let sink = connection.readSink {
                target = sink.readTarget(connection)
            } else {
                target = connection.loop.readBuffer
            }
            downpour_buf_set(buf, target.baseAddress, target.count)
        }, { stream, nread, buf in
            TCPConnection.from(stream).didRead(nread, into: downpour_buf_base(buf!))
        })
        if status < 0 {
            fail(ReactorError(uvCode: status, operation: "uv_read_start"))
        } else {
            reading = true
        }
    }

    private func didRead(_ nread: Int, into base: UnsafeMutableRawPointer?) {
        if nread > 0 {
            lastActivity = loop.now
            bytesRead &+= UInt64(nread)
            if let sink = readSink {
                sink.didRead(self, base: base!, count: nread)
            } else if let onRead {
                onRead(UnsafeRawBufferPointer(start: base, count: nread))
            }
        } else if nread == Int(UV_EOF.rawValue) {
            peerEnded = true
            if reading { uv_read_stop(stream); reading = false }
            if let error = readSink?.didReadEnd(self) {
                fail(error)
            } else {
                // The peer is done sending: finish our writes, then close.
                close()
            }
        } else if nread < 0 {
            fail(ReactorError(uvCode: Int32(nread), operation: "read from \(remoteAddress)"))
        }
    }

    // MARK: Writing

    /// The bytes queued for writing and not yet confirmed written by the kernel.
    public var queuedWriteBytes: Int { pendingBytes + inFlightBytes }

    /// Bytes read from the peer so far: progress even while a large frame is still arriving.
    public private(set) var bytesRead: UInt64 = 0

    /// Whether the connection is open (not closing, not draining for a graceful close).
    var isOpen: Bool { state == .open }

    /// Whether writes are still accepted (the connection is open and not shut down for writing).
    @inline(__always)
    var acceptsWrites: Bool { state == .open && !shutdownRequested }

    /// Queues `bytes` for writing.
    ///
    /// Writes on a closing or closed connection are dropped. A write that would take the queue past
    /// ``Configuration/maxQueuedWriteBytes`` closes the connection with `.writeQueueOverflow`.
    ///
    /// - Parameter bytes: The bytes; copied before this returns.
    /// - Warning: Loop thread only.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0, let base = bytes.baseAddress else { return }
        write(byteCount: bytes.count) { $0.baseAddress!.copyMemory(from: base, byteCount: bytes.count) }
    }

    /// Queues `bytes` for writing. See ``write(_:)-(UnsafeRawBufferPointer)``.
    ///
    /// - Warning: Loop thread only.
    public func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    /// Reserves `byteCount` bytes at the end of the write queue and lets `fill` write them in place.
    ///
    /// Small writes are packed into shared chunks; a large one gets a buffer of its own. Either way
    /// the bytes are written once, by `fill`, and never copied again before the kernel takes them.
    ///
    /// - Parameters:
    ///   - byteCount: Exactly how many bytes `fill` writes.
    ///   - fill: Writes the bytes into the buffer it is given (of exactly `byteCount` bytes).
    /// - Warning: Loop thread only. Dropped when the connection no longer accepts writes.
    @inline(__always)
    public func write(byteCount: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Void) {
        guard let target = reserve(byteCount) else { return }
        fill(UnsafeMutableRawBufferPointer(start: target, count: byteCount))
    }

    /// Queues a buffer this connection takes ownership of (allocated with `UnsafeMutableRawPointer.allocate`).
    func writeOwned(_ base: UnsafeMutableRawPointer, capacity: Int, byteCount: Int) {
        loop.assertInEventLoop()
        guard acceptsWrites, admit(byteCount) else {
            base.deallocate()
            return
        }
        sealTail()
        pending.append(Chunk(base: base, capacity: capacity, start: 0, end: byteCount, pooled: false))
        enqueued(byteCount)
    }

    /// Reserves between 1 and `limit` bytes at the end of the queue: as many as fit in the pooled
    /// chunk being filled, or in a fresh one. For bytes that may be split anywhere (TLS records), so
    /// that they never need a buffer of their own.
    ///
    /// - Returns: The reserved bytes, to be filled entirely, or nil if the write is dropped.
    func reserveContiguous(upTo limit: Int) -> UnsafeMutableRawBufferPointer? {
        loop.assertInEventLoop()
        guard acceptsWrites, limit > 0 else { return nil }
        if let tail, tail.start == tail.end {
            // Nothing unwritten in it: reuse it from the start.
            self.tail!.start = 0
            self.tail!.end = 0
        }
        let room = tail.map { $0.capacity - $0.end } ?? 0
        // A sliver left in the tail chunk is not worth a buffer of the kernel's write.
        let count = room >= min(limit, 1024) ? min(room, limit) : min(EventLoop.chunkSize, limit)
        guard admit(count) else { return nil }
        if room < count {
            sealTail()  // it holds bytes: an empty one was reset above, and has room
            tail = Chunk(base: loop.takeChunk(), capacity: EventLoop.chunkSize, start: 0, end: 0, pooled: true)
        }
        let target = tail!.base + tail!.end
        tail!.end += count
        enqueued(count)
        return UnsafeMutableRawBufferPointer(start: target, count: count)
    }

    /// Asks for a flush before the loop next waits, for bytes a ``writeStage`` holds.
    func requestFlush() {
        if !dirty {
            dirty = true
            loop.markDirty(self)
        }
    }

    /// Makes room for `byteCount` bytes at the end of the queue, or returns nil if the write is dropped.
    @inline(__always)
    func reserve(_ byteCount: Int) -> UnsafeMutableRawPointer? {
        loop.assertInEventLoop()
        guard acceptsWrites, byteCount > 0, admit(byteCount) else { return nil }
        // The fast path: room in the tail chunk.
        if let tail, tail.capacity - tail.end >= byteCount {
            self.tail!.end = tail.end + byteCount
            enqueued(byteCount)
            return tail.base + tail.end
        }
        return reserveChunk(byteCount)
    }

    private func reserveChunk(_ byteCount: Int) -> UnsafeMutableRawPointer {
        let target: UnsafeMutableRawPointer
        if byteCount <= EventLoop.chunkSize / 4 {
            sealTail()
            let chunk = loop.takeChunk()
            tail = Chunk(base: chunk, capacity: EventLoop.chunkSize, start: 0, end: byteCount, pooled: true)
            target = chunk
        } else {
            // A large write gets a buffer of its own (one the loop kept from an earlier large write, if
            // it has one that fits), after what the tail chunk holds.
            sealTail()
            let buffer = loop.takeLargeBuffer(minimumCapacity: byteCount)
            pending.append(Chunk(base: buffer.base, capacity: buffer.capacity, start: 0, end: byteCount, pooled: false))
            target = buffer.base
        }
        enqueued(byteCount)
        return target
    }

    /// Moves the tail chunk, if it holds unwritten bytes, to the end of `pending`.
    private func sealTail() {
        guard let tail, tail.end > tail.start else { return }
        pending.append(tail)
        self.tail = nil
    }

    /// Checks the hard bound; closes the connection if `byteCount` more bytes would break it.
    @inline(__always)
    private func admit(_ byteCount: Int) -> Bool {
        if queuedWriteBytes + byteCount > configuration.maxQueuedWriteBytes {
            fail(ReactorError(.writeQueueOverflow, operation: "write to \(remoteAddress)",
                              message: "\(queuedWriteBytes + byteCount) bytes would be queued, more than the limit of \(configuration.maxQueuedWriteBytes)"))
            return false
        }
        return true
    }

    @inline(__always)
    private func enqueued(_ byteCount: Int) {
        pendingBytes += byteCount
        if !dirty {
            dirty = true
            loop.markDirty(self)
        }
        if isWritable && queuedWriteBytes > configuration.writeHighWaterMark {
            isWritable = false
            onWritabilityChanged?(false)
        }
    }

    /// Gives a written chunk back: a pooled one to the loop's pool, a large one to the loop's cache of
    /// large buffers (see ``EventLoop/takeLargeBuffer(minimumCapacity:)``), either freed without a loop.
    private static func release(_ chunk: Chunk, loop: EventLoop?) {
        guard let loop else {
            chunk.base.deallocate()
            return
        }
        if chunk.pooled {
            loop.recycleChunk(chunk.base)
        } else {
            loop.recycleLargeBuffer(chunk.base, capacity: chunk.capacity)
        }
    }

    /// Hands queued bytes to the kernel: `uv_try_write` first, `uv_write` for what does not fit.
    ///
    /// The loop calls this before it next waits for I/O; a write callback calls it for what queued up
    /// meanwhile.
    func flush() {
        // Before `dirty` is cleared, so that the bytes the stage queues do not mark the connection again.
        if let writeStage, state == .open { writeStage.stageWillFlush(self) }
        dirty = false
        guard state == .open || state == .draining else { return }
        // The fast path: everything queued is in the tail chunk and the kernel takes it all.
        if pending.isEmpty, !writeInFlight, let tail, tail.end > tail.start {
            var buf = downpour_buf(tail.base + tail.start, tail.end - tail.start)
            let written = Int(uv_try_write(stream, &buf, 1))
            if written == tail.end - tail.start {
                self.tail!.start = 0
                self.tail!.end = 0
                pendingBytes -= written
                lastActivity = loop.now
                afterWriteProgress()
                return
            }
            if written < 0 && written != Int(UV_EAGAIN.rawValue) {
                fail(ReactorError(uvCode: Int32(written), operation: "write to \(remoteAddress)"))
                return
            }
            if written > 0 {
                self.tail!.start += written
                pendingBytes -= written
                lastActivity = loop.now
            }
        }
        sealTail()
        var rounds = 0
        // Bounded: each round hands up to maxBufsPerWrite buffers over.
        while !writeInFlight, !pending.isEmpty, state != .closing, state != .closed, rounds < 16 {
            rounds += 1
            let count = min(pending.count, EventLoop.maxBufsPerWrite)
            var total = 0
            for index in 0..<count {
                let chunk = pending[index]
                loop.writeBufs[index] = downpour_buf(chunk.base + chunk.start, chunk.end - chunk.start)
                total += chunk.end - chunk.start
            }
            var written = Int(uv_try_write(stream, loop.writeBufs, UInt32(count)))
            if written < 0 && written != Int(UV_EAGAIN.rawValue) {
                fail(ReactorError(uvCode: Int32(written), operation: "write to \(remoteAddress)"))
                return
            }
            written = max(written, 0)
            if written > 0 { lastActivity = loop.now }
            // Drop what the kernel took.
            pendingBytes -= written
            var consumed = 0
            var remaining = written
            while consumed < count, remaining >= pending[consumed].end - pending[consumed].start {
                remaining -= pending[consumed].end - pending[consumed].start
                Self.release(pending[consumed], loop: loop)
                consumed += 1
            }
            if consumed < count { pending[consumed].start += remaining }
            pending.removeFirst(consumed)
            if written == total { continue }
            // The socket is full: queue the rest with uv_write and wait for its callback.
            let left = count - consumed
            for index in 0..<left {
                let chunk = pending[index]
                loop.writeBufs[index] = downpour_buf(chunk.base + chunk.start, chunk.end - chunk.start)
                inFlightBytes += chunk.end - chunk.start
                pendingBytes -= chunk.end - chunk.start
            }
            inFlight.append(contentsOf: pending[0..<left])
            pending.removeFirst(left)
            let status = uv_write(writeRequest, stream, loop.writeBufs, UInt32(left)) { request, status in
                let connection = Unmanaged<TCPConnection>.fromOpaque(request!.pointee.data!).takeUnretainedValue()
                connection.didWrite(status)
            }
            if status < 0 {
                fail(ReactorError(uvCode: status, operation: "uv_write to \(remoteAddress)"))
                return
            }
            writeInFlight = true
        }
        if !pending.isEmpty && !writeInFlight && !dirty && state != .closing && state != .closed {
            // Bounded above; finish next time round.
            dirty = true
            loop.markDirty(self)
        }
        afterWriteProgress()
    }

    private func didWrite(_ status: Int32) {
        writeInFlight = false
        for chunk in inFlight { Self.release(chunk, loop: loop) }
        inFlight.removeAll(keepingCapacity: true)
        inFlightBytes = 0
        if status < 0 {
            if status != UV_ECANCELED.rawValue {
                fail(ReactorError(uvCode: status, operation: "write to \(remoteAddress)"))
            }
            return
        }
        lastActivity = loop.now
        if !pending.isEmpty || (tail.map { $0.end > $0.start } ?? false) {
            flush()
        } else {
            afterWriteProgress()
        }
    }

    /// Reports writability, and finishes a graceful close or a half-close once the queue is empty.
    private func afterWriteProgress() {
        if !isWritable && queuedWriteBytes <= configuration.writeLowWaterMark && state == .open {
            isWritable = true
            onWritabilityChanged?(true)
        }
        guard queuedWriteBytes == 0 else { return }
        if state == .draining {
            closeHandles()
        } else if shutdownRequested && !shutdownSent && state == .open {
            shutdownSent = true
            let status = uv_shutdown(shutdownRequest, stream) { request, status in
                let connection = Unmanaged<TCPConnection>.fromOpaque(request!.pointee.data!).takeUnretainedValue()
                connection.didShutdown(status)
            }
            if status < 0 { fail(ReactorError(uvCode: status, operation: "uv_shutdown")) }
        }
    }

    private func didShutdown(_ status: Int32) {
        if status < 0 && status != UV_ECANCELED.rawValue {
            fail(ReactorError(uvCode: status, operation: "uv_shutdown"))
        } else if peerEnded && state == .open {
            closeHandles()
        }
    }

    // MARK: Closing

    /// Half-closes: sends a FIN once queued writes are written; reading goes on.
    ///
    /// Later writes are dropped. When the peer then ends its side too, the connection closes.
    ///
    /// - Warning: Loop thread only.
    public func shutdownWrite() {
        loop.assertInEventLoop()
        guard state == .open, !shutdownRequested else { return }
        shutdownRequested = true
        if queuedWriteBytes == 0 && !dirty { afterWriteProgress() }
    }

    /// Closes gracefully: stops reading, writes what is queued, then closes. ``onClose`` gets `nil`.
    ///
    /// A peer that never reads keeps the connection open until the idle timeout, if there is one;
    /// ``close(lingeringAtMost:)`` bounds the wait.
    ///
    /// - Warning: Loop thread only.
    public func close() {
        loop.assertInEventLoop()
        guard state == .open else { return }
        state = .draining
        if reading { uv_read_stop(stream); reading = false }
        if queuedWriteBytes == 0 { closeHandles() }
    }

    /// Closes gracefully, but for at most `linger`: stops reading, writes what is queued, and closes at
    /// once if the kernel has not taken it all by then.
    ///
    /// ``onClose`` gets `nil` when everything was written, else `.lingerTimeout` (or the error that
    /// was already on record, such as the refusal that started the close). Called on a connection
    /// already closing gracefully, it bounds that close if it had no bound yet.
    ///
    /// - Parameter linger: How long queued bytes may take to be written.
    /// - Warning: Loop thread only.
    public func close(lingeringAtMost linger: Duration) {
        close()
        guard state == .draining, lingerTimer == nil else { return }
        // Unowned: closeHandles() cancels the timer, and this object lives until after that.
        lingerTimer = loop.scheduleTimer(after: linger) { [unowned self] in
            lingerExpired(linger)
        }
    }

    private func lingerExpired(_ linger: Duration) {
        lingerTimer = nil
        guard state == .draining else { return }
        if closeError == nil {
            closeError = ReactorError(.lingerTimeout, operation: "close \(remoteAddress)",
                                      message: "\(queuedWriteBytes) queued bytes were not written within \(linger); dropped them")
        }
        closeHandles()
    }

    /// Records `error` for ``onClose`` (unless one is recorded already) without closing yet: for a
    /// close that must report an error but first lets queued writes out.
    func recordCloseError(_ error: ReactorError) {
        if closeError == nil { closeError = error }
    }

    /// Closes at once, dropping queued writes. ``onClose`` gets `nil`.
    ///
    /// - Warning: Loop thread only.
    public func closeNow() {
        loop.assertInEventLoop()
        closeHandles()
    }

    /// Closes at once because of `error`, which ``onClose`` receives.
    func fail(_ error: ReactorError) {
        if closeError == nil { closeError = error }
        closeHandles()
    }

    func closeForShutdown() {
        fail(ReactorError(.loopStopped, operation: "connection \(remoteAddress)", message: "the event loop stopped"))
    }

    private func closeHandles() {
        guard state == .open || state == .draining else { return }
        state = .closing
        reading = false
        loop.unregister(self)
        lingerTimer?.cancel()
        lingerTimer = nil
        if let idleTimer {
            uv_close(downpour_timer_as_handle(idleTimer)) { handle in
                let connection = Unmanaged<TCPConnection>.fromOpaque(handle!.pointee.data!).takeUnretainedValue()
                handle!.deallocate()
                connection.idleTimer = nil
                connection.handleClosed()
            }
        }
        uv_close(downpour_tcp_as_handle(tcp)) { handle in
            TCPConnection.from(handle).handleClosed()
        }
    }

    private func handleClosed() {
        openHandles -= 1
        guard openHandles == 0 else { return }
        state = .closed
        for chunk in pending { Self.release(chunk, loop: loop) }
        pending.removeAll()
        if let tail { Self.release(tail, loop: loop) }
        tail = nil
        pendingBytes = 0
        let onClose = self.onClose
        let error = closeError
        self.onClose = nil
        onRead = nil
        onWritabilityChanged = nil
        writeStage = nil
        readSink?.connectionDidClose()
        readSink = nil
        tcp.deallocate()
        onClose?(error)
        // Balances the passRetained in init: the object may go away now.
        Unmanaged.passUnretained(self).release()
    }

    private func idleTimerFired() {
        guard let idle = configuration.idleTimeout, let idleTimer else { return }
        let limit = max(idle.uvMilliseconds, 1)
        let idleFor = loop.now &- lastActivity
        if idleFor >= limit {
            fail(ReactorError(.idleTimeout, operation: "connection \(remoteAddress)",
                              message: "nothing read or written for \(idle)"))
        } else {
            uv_timer_start(idleTimer, { timer in
                Unmanaged<TCPConnection>.fromOpaque(timer!.pointee.data!).takeUnretainedValue().idleTimerFired()
            }, limit - idleFor, 0)
        }
    }

    // MARK: Addresses

    static func peerName(of tcp: UnsafeMutablePointer<uv_tcp_t>) -> String {
        var storage = sockaddr_storage()
        var length = Int32(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutablePointer(to: &storage) { pointer in
            uv_tcp_getpeername(tcp, downpour_storage_as_mutable_sockaddr(pointer), &length)
        }
        guard status == 0 else { return "" }
        return withUnsafePointer(to: &storage) { describe(downpour_storage_as_sockaddr($0)) }
    }

    /// `"127.0.0.1:5000"` or `"[::1]:5000"` for an IPv4 or IPv6 address.
    static func describe(_ address: UnsafePointer<sockaddr>) -> String {
        var name = [CChar](repeating: 0, count: 64)
        guard uv_ip_name(address, &name, name.count) == 0 else { return "" }
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let port = downpour_sockaddr_port(address)
        return address.pointee.sa_family == sa_family_t(AF_INET6) ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
