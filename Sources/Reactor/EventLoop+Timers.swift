import CLibUV

/// Closes a handle whose `data` holds its owner, retained; the close callback releases the owner and
/// frees the handle's memory (allocated with `UnsafeMutablePointer.allocate`).
///
/// - Warning: Loop thread only. Call once per handle.
func closeOwnedHandle(_ handle: UnsafeMutablePointer<uv_handle_t>) {
    uv_close(handle) { handle in
        let handle = handle!
        Unmanaged<AnyObject>.fromOpaque(handle.pointee.data!).release()
        UnsafeMutableRawPointer(handle).deallocate()
    }
}

/// The shared core of a timer and a signal watcher: one libuv handle that runs one body until closed.
///
/// - Warning: Loop thread only. The handle's memory and this object (retained through the handle's
///   `data`) live until the close callback.
final class CallbackHandle<Handle>: LoopResource {
    let loop: EventLoop
    let handle: UnsafeMutablePointer<Handle>
    var body: (() -> Void)?
    private(set) var closed = false

    /// Allocates the handle and lets `initialize` set it up with `uv_*_init` (which cannot fail on a
    /// live loop); returns nil when the loop is stopping.
    init?(loop: EventLoop, body: @escaping () -> Void, initialize: (UnsafeMutablePointer<Handle>) -> Void) {
        guard !loop.isShuttingDown else { return nil }
        self.loop = loop
        self.body = body
        handle = .allocate(capacity: 1)
        initialize(handle)
        uv_handle_set_data(downpour_as_handle(handle), Unmanaged.passRetained(self).toOpaque())
        loop.register(self)
    }

    static func from(_ handle: UnsafeMutablePointer<Handle>) -> CallbackHandle {
        Unmanaged<CallbackHandle>.fromOpaque(uv_handle_get_data(downpour_as_handle(handle))!).takeUnretainedValue()
    }

    func closeForShutdown() { close() }

    func close() {
        guard !closed else { return }
        closed = true
        loop.unregister(self)
        body = nil
        closeOwnedHandle(downpour_as_handle(handle))
    }
}

/// A scheduled timer; cancel it with ``cancel()``.
///
/// A one-shot timer closes its handle after it fired; a repeating one runs until cancelled or the
/// loop stops.
///
/// - Warning: Loop thread only. The `uv_timer_t` lives until the handle's close callback, even if you
///   drop every reference to this object.
public final class TimerHandle {
    private let core: CallbackHandle<uv_timer_t>?

    init(loop: EventLoop, after: Duration, repeating: Duration?, body: @escaping () -> Void) {
        core = CallbackHandle(loop: loop, body: body) { uv_timer_init(loop.uvLoop, $0) }
        guard let core else { return }
        let repeatMilliseconds = repeating.map { max($0.uvMilliseconds, 1) } ?? 0
        uv_timer_start(core.handle, { handle in
            let core = CallbackHandle<uv_timer_t>.from(handle!)
            let body = core.body
            // A one-shot timer closes before its body runs, so the body may schedule or cancel freely.
            if uv_timer_get_repeat(handle) == 0 { core.close() }
            body?()
        }, after.uvMilliseconds, repeatMilliseconds)
    }

    /// Whether the timer can still fire.
    public var isActive: Bool { core.map { !$0.closed } ?? false }

    /// Stops the timer; its body will not run again. Cancelling twice (or after a one-shot fired) does nothing.
    ///
    /// - Warning: Loop thread only.
    public func cancel() {
        guard let core else { return }
        core.loop.assertInEventLoop()
        core.close()
    }
}

/// Watches one signal (SIGINT, SIGTERM, ...) on the loop, until cancelled or the loop stops.
///
/// - Warning: Loop thread only. The `uv_signal_t` lives until the handle's close callback.
public final class SignalWatcher {
    private let core: CallbackHandle<uv_signal_t>
    /// The signal number watched.
    public let signal: Int32

    init(loop: EventLoop, signal: Int32, body: @escaping () -> Void) throws {
        self.signal = signal
        guard let core = CallbackHandle<uv_signal_t>(loop: loop, body: body, initialize: { uv_signal_init(loop.uvLoop, $0) }) else {
            throw ReactorError(.loopStopped, operation: "uv_signal_start", message: "the event loop is stopping")
        }
        self.core = core
        do {
            try uvCheck(uv_signal_start(core.handle, { handle, _ in
                CallbackHandle<uv_signal_t>.from(handle!).body?()
            }, signal), "uv_signal_start(\(signal))")
        } catch {
            core.close()
            throw error
        }
    }

    /// Stops watching; the body will not run again.
    ///
    /// - Warning: Loop thread only.
    public func cancel() {
        core.loop.assertInEventLoop()
        core.close()
    }
}

extension EventLoop {
    /// Runs `body` on the loop thread after a delay, and then every `repeating` if given.
    ///
    /// Timers due at the same time fire in the order they were scheduled. Resolution is one millisecond.
    ///
    /// - Parameters:
    ///   - after: The delay before the first run.
    ///   - repeating: The period after that, or `nil` for a one-shot timer.
    ///   - body: What to run, on the loop thread.
    /// - Returns: A handle whose ``TimerHandle/cancel()`` stops the timer. Dropping it does not.
    /// - Warning: Loop thread only. Scheduled while the loop is stopping, the timer never fires.
    @discardableResult
    public func scheduleTimer(after: Duration, repeating: Duration? = nil,
                              _ body: @escaping () -> Void) -> TimerHandle {
        assertInEventLoop()
        return TimerHandle(loop: self, after: after, repeating: repeating, body: body)
    }

    /// Runs `body` on the loop thread each time the process receives `signal`.
    ///
    /// - Parameters:
    ///   - signal: The signal number, such as `SIGINT` or `SIGTERM`.
    ///   - body: What to run, on the loop thread (a graceful shutdown, typically).
    /// - Returns: A watcher whose ``SignalWatcher/cancel()`` stops watching.
    /// - Throws: ``ReactorError`` if libuv cannot watch the signal, or the loop is stopping.
    /// - Warning: Loop thread only.
    public func watchSignal(_ signal: Int32, _ body: @escaping () -> Void) throws -> SignalWatcher {
        assertInEventLoop()
        return try SignalWatcher(loop: self, signal: signal, body: body)
    }
}
