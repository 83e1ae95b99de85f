import CLibUV

extension TCPConnection {
    /// Connects to `host`:`port`, retrying every `retryInterval` until it succeeds or `deadline` passes.
    ///
    /// Each attempt resolves `host` with `uv_getaddrinfo` and tries every address it returns, in order.
    /// A failed attempt is reported to `onAttemptFailed` (with the attempt's number, from 1) and the
    /// next one starts `retryInterval` later. At the deadline the pending attempt is abandoned and
    /// `completion` gets a `.deadlineExceeded` error naming the last failure.
    ///
    /// ```swift
    /// TCPConnection.connect(loop: loop, host: "ps-server", port: 7000, retryInterval: .seconds(1),
    ///                       deadline: .now + .seconds(30),
    ///                       onAttemptFailed: { error, attempt in print("attempt \(attempt): \(error)") }) { result in
    ///     ...
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - loop: The loop to connect on.
    ///   - host: A host name or numeric address.
    ///   - port: The port.
    ///   - configuration: The connection's configuration.
    ///   - retryInterval: The wait after a failed attempt before the next one starts.
    ///   - deadline: When to give up, or `nil` to retry forever.
    ///   - onAttemptFailed: Runs after each failed attempt with the error and the attempt number.
    ///   - completion: Runs exactly once, with the connection (install its callbacks here: reading
    ///     starts when this returns) or the final error (`.deadlineExceeded`, `.loopStopped`,
    ///     `.invalidArgument`).
    /// - Warning: Loop thread only; every callback runs on the loop thread.
    public static func connect(loop: EventLoop, host: String, port: Int,
                               configuration: Configuration = .init(),
                               retryInterval: Duration = .seconds(1),
                               deadline: ContinuousClock.Instant? = nil,
                               onAttemptFailed: @escaping (ReactorError, Int) -> Void = { _, _ in },
                               completion: @escaping (Result<TCPConnection, ReactorError>) -> Void) {
        loop.assertInEventLoop()
        let connector = Connector(loop: loop, host: host, port: port, configuration: configuration,
                                  retryInterval: retryInterval, deadline: deadline,
                                  onAttemptFailed: onAttemptFailed, completion: completion)
        connector.begin()
    }
}

/// Carries one connect-with-retry through its attempts.
///
/// - Warning: Loop thread only. Retained by the loop's resource table while it runs, and by each
///   outstanding libuv request through the request's `data`.
final class Connector: LoopResource {
    let loop: EventLoop
    let host: String
    let port: Int
    let configuration: TCPConnection.Configuration
    let retryInterval: Duration
    let deadline: ContinuousClock.Instant?
    var onAttemptFailed: ((ReactorError, Int) -> Void)?
    var completion: ((Result<TCPConnection, ReactorError>) -> Void)?

    private var attempt = 0
    private var finished = false
    private var lastError: ReactorError?
    private var retryTimer: TimerHandle?
    private var deadlineTimer: TimerHandle?
    private var candidate: TCPConnection?
    private var addresses: [sockaddr_storage] = []
    private var addressIndex = 0
    private var resolving: UnsafeMutablePointer<uv_getaddrinfo_t>?
    /// The address being connected to, for messages.
    private var currentAddress = ""

    init(loop: EventLoop, host: String, port: Int, configuration: TCPConnection.Configuration,
         retryInterval: Duration, deadline: ContinuousClock.Instant?,
         onAttemptFailed: @escaping (ReactorError, Int) -> Void,
         completion: @escaping (Result<TCPConnection, ReactorError>) -> Void) {
        self.loop = loop
        self.host = host
        self.port = port
        self.configuration = configuration
        self.retryInterval = retryInterval
        self.deadline = deadline
        self.onAttemptFailed = onAttemptFailed
        self.completion = completion
    }

    private var target: String { "\(host):\(port)" }

    func begin() {
        guard (1...65535).contains(port) else {
            finish(.failure(ReactorError(.invalidArgument, operation: "connect \(target)", message: "port out of range")))
            return
        }
        if loop.isShuttingDown {
            finish(.failure(ReactorError(.loopStopped, operation: "connect \(target)", message: "the event loop is stopping")))
            return
        }
        loop.register(self)
        if let deadline {
            let left = deadline - .now
            deadlineTimer = loop.scheduleTimer(after: max(left, .zero)) { [self] in deadlineReached() }
        }
        startAttempt()
    }

    // MARK: Attempts

    private func startAttempt() {
        guard !finished else { return }
        attempt += 1
        let request = UnsafeMutablePointer<uv_getaddrinfo_t>.allocate(capacity: 1)
        request.pointee.data = Unmanaged.passRetained(self).toOpaque()
        resolving = request
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        let status = uv_getaddrinfo(loop.uvLoop, request, { request, status, result in
            let connector = Unmanaged<Connector>.fromOpaque(request!.pointee.data!).takeRetainedValue()
            connector.resolved(request!, status: status, result: result)
        }, host, String(port), &hints)
        if status < 0 {
            Unmanaged<Connector>.fromOpaque(request.pointee.data!).release()
            request.deallocate()
            resolving = nil
            attemptFailed(ReactorError(uvCode: status, operation: "uv_getaddrinfo \(host)"))
        }
    }

    private func resolved(_ request: UnsafeMutablePointer<uv_getaddrinfo_t>, status: Int32,
                          result: UnsafeMutablePointer<addrinfo>?) {
        resolving = nil
        request.deallocate()
        defer { uv_freeaddrinfo(result) }
        guard !finished else { return }
        if status < 0 {
            attemptFailed(ReactorError(uvCode: status, operation: "resolve \(host)"))
            return
        }
        addresses.removeAll()
        var next = result
        while let info = next, addresses.count < 16 {
            if let address = info.pointee.ai_addr {
                var storage = sockaddr_storage()
                downpour_copy_sockaddr(&storage, address)
                addresses.append(storage)
            }
            next = info.pointee.ai_next
        }
        addressIndex = 0
        connectNext()
    }

    private func connectNext() {
        guard !finished else { return }
        guard addressIndex < addresses.count else {
            attemptFailed(lastError ?? ReactorError(.invalidArgument, operation: "resolve \(host)", message: "no address found"))
            return
        }
        var address = addresses[addressIndex]
        addressIndex += 1
        let connection: TCPConnection
        do {
            connection = try TCPConnection(loop: loop, configuration: configuration)
        } catch {
            attemptFailed(error)
            return
        }
        candidate = connection
        let request = UnsafeMutablePointer<uv_connect_t>.allocate(capacity: 1)
        request.pointee.data = Unmanaged.passRetained(self).toOpaque()
        currentAddress = withUnsafePointer(to: &address) { TCPConnection.describe(downpour_storage_as_sockaddr($0)) }
        let status = withUnsafePointer(to: &address) { pointer in
            uv_tcp_connect(request, connection.tcp, downpour_storage_as_sockaddr(pointer)) { request, status in
                let connector = Unmanaged<Connector>.fromOpaque(request!.pointee.data!).takeRetainedValue()
                request!.deallocate()
                connector.connected(status)
            }
        }
        if status < 0 {
            Unmanaged<Connector>.fromOpaque(request.pointee.data!).release()
            request.deallocate()
            candidate = nil
            connection.closeNow()
            lastError = ReactorError(uvCode: status, operation: "connect \(currentAddress)")
            connectNext()
        }
    }

    private func connected(_ status: Int32) {
        guard let connection = candidate else { return }
        candidate = nil
        if finished {
            connection.closeNow()
            return
        }
        if status < 0 {
            lastError = ReactorError(uvCode: status, operation: "connect \(currentAddress)")
            connection.closeNow()
            connectNext()
            return
        }
        connection.didConnect()
        finish(.success(connection))
        connection.startReading()
    }

    private func attemptFailed(_ error: ReactorError) {
        guard !finished else { return }
        lastError = error
        onAttemptFailed?(error, attempt)
        guard !finished else { return }
        if let deadline, ContinuousClock.now + retryInterval >= deadline {
            // The next attempt would start after the deadline: wait for the deadline timer.
            return
        }
        retryTimer = loop.scheduleTimer(after: retryInterval) { [self] in
            retryTimer = nil
            startAttempt()
        }
    }

    private func deadlineReached() {
        guard !finished else { return }
        let last = candidate != nil ? "connect \(currentAddress) did not complete"
            : lastError?.description ?? "no attempt finished"
        finish(.failure(ReactorError(.deadlineExceeded, operation: "connect \(target)",
                                     message: "gave up after \(attempt) attempt(s); last: \(last)")))
    }

    func closeForShutdown() {
        finish(.failure(ReactorError(.loopStopped, operation: "connect \(target)", message: "the event loop stopped")))
    }

    private func finish(_ result: Result<TCPConnection, ReactorError>) {
        guard !finished else { return }
        finished = true
        loop.unregister(self)
        retryTimer?.cancel()
        retryTimer = nil
        deadlineTimer?.cancel()
        deadlineTimer = nil
        if let candidate {
            // A connect in flight: closing the handle makes its callback run with UV_ECANCELED.
            self.candidate = nil
            candidate.closeNow()
        }
        if let resolving {
            // Cancels a lookup still queued; one already running finishes and is ignored.
            uv_cancel(downpour_getaddrinfo_as_req(resolving))
        }
        let completion = self.completion
        self.completion = nil
        onAttemptFailed = nil
        completion?(result)
    }
}
