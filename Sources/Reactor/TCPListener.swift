import CLibUV

/// A listening TCP socket that hands each accepted connection, still raw, to a callback.
///
/// ```swift
/// let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { connection in
///     connection.onRead = { bytes in connection.write(bytes) }
/// }
/// print("listening on", listener.localPort)
/// ```
///
/// - Warning: Loop thread only. The `uv_tcp_t` and this object live until the close callback.
public final class TCPListener: LoopResource {
    /// The loop the listener lives on.
    public let loop: EventLoop
    private let tcp: UnsafeMutablePointer<uv_tcp_t>
    private let configuration: TCPConnection.Configuration
    private var onConnection: ((TCPConnection) -> Void)?
    /// Runs when accepting a connection fails (too many open files, say); the listener carries on.
    public var onAcceptError: ((ReactorError) -> Void)?
    private var closed = false
    /// The port the listener is bound to (the ephemeral one the kernel chose, when created with port 0).
    public private(set) var localPort: Int = 0
    /// The bound address, as `"127.0.0.1:5000"` or `"[::1]:5000"`.
    public private(set) var localAddress: String = ""

    /// Binds and listens on `host`:`port`.
    ///
    /// - Parameters:
    ///   - loop: The loop to accept on.
    ///   - host: A numeric IPv4 or IPv6 address (`"0.0.0.0"`, `"::"`, `"127.0.0.1"`) or a resolvable name.
    ///   - port: The port, or 0 for an ephemeral one (read it back from ``localPort``).
    ///   - backlog: The kernel's accept queue length.
    ///   - configuration: The configuration of each accepted connection.
    ///   - onConnection: Runs on the loop thread with each accepted connection. Install its callbacks
    ///     here: reading starts when this returns.
    /// - Throws: ``ReactorError`` if the address cannot be resolved, bound or listened on.
    /// - Warning: Loop thread only.
    public init(loop: EventLoop, host: String, port: Int, backlog: Int32 = 1024,
                configuration: TCPConnection.Configuration = .init(),
                onConnection: @escaping (TCPConnection) -> Void) throws {
        loop.assertInEventLoop()
        guard (0...65535).contains(port) else {
            throw ReactorError(.invalidArgument, operation: "listen on \(host):\(port)", message: "port out of range")
        }
        if loop.isShuttingDown {
            throw ReactorError(.loopStopped, operation: "listen on \(host):\(port)", message: "the event loop is stopping")
        }
        self.loop = loop
        self.configuration = configuration
        self.onConnection = onConnection
        var address = try resolveSync(loop: loop, host: host, port: port, passive: true)
        tcp = .allocate(capacity: 1)
        let status = uv_tcp_init(loop.uvLoop, tcp)
        if status < 0 {
            tcp.deallocate()
            throw ReactorError(uvCode: status, operation: "uv_tcp_init")
        }
        tcp.pointee.data = Unmanaged.passRetained(self).toOpaque()
        loop.register(self)
        do {
            _ = try withUnsafePointer(to: &address) { pointer throws(ReactorError) in
                try uvCheck(uv_tcp_bind(tcp, downpour_storage_as_sockaddr(pointer), 0), "uv_tcp_bind \(host):\(port)")
            }
            try uvCheck(uv_listen(downpour_tcp_as_stream(tcp), backlog) { server, status in
                let listener = Unmanaged<TCPListener>.fromOpaque(server!.pointee.data!).takeUnretainedValue()
                listener.accept(status)
            }, "uv_listen \(host):\(port)")
            var bound = sockaddr_storage()
            var length = Int32(MemoryLayout<sockaddr_storage>.size)
            try withUnsafeMutablePointer(to: &bound) { pointer throws(ReactorError) in
                try uvCheck(uv_tcp_getsockname(tcp, downpour_storage_as_mutable_sockaddr(pointer), &length), "uv_tcp_getsockname")
                localPort = Int(downpour_sockaddr_port(downpour_storage_as_sockaddr(pointer)))
                localAddress = TCPConnection.describe(downpour_storage_as_sockaddr(pointer))
            }
        } catch {
            close()
            throw error
        }
    }

    private func accept(_ status: Int32) {
        guard !closed else { return }
        if status < 0 {
            onAcceptError?(ReactorError(uvCode: status, operation: "accept on \(localAddress)"))
            return
        }
        let connection: TCPConnection
        do {
            connection = try TCPConnection(loop: loop, configuration: configuration)
        } catch {
            onAcceptError?(error)
            return
        }
        let status = uv_accept(downpour_tcp_as_stream(tcp), connection.stream)
        if status < 0 {
            connection.closeNow()
            onAcceptError?(ReactorError(uvCode: status, operation: "uv_accept on \(localAddress)"))
            return
        }
        connection.didConnect()
        onConnection?(connection)
        connection.startReading()
    }

    /// Stops listening and closes the socket. Accepted connections stay open.
    ///
    /// - Warning: Loop thread only.
    public func close() {
        loop.assertInEventLoop()
        guard !closed else { return }
        closed = true
        onConnection = nil
        onAcceptError = nil
        loop.unregister(self)
        closeOwnedHandle(downpour_tcp_as_handle(tcp))
    }

    func closeForShutdown() { close() }
}

/// Resolves `host`:`port` synchronously (for binding; numeric addresses resolve without a lookup).
func resolveSync(loop: EventLoop, host: String, port: Int, passive: Bool) throws(ReactorError) -> sockaddr_storage {
    var storage = sockaddr_storage()
    if withUnsafeMutablePointer(to: &storage, { pointer in
        pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { uv_ip4_addr(host, Int32(port), $0) } == 0
    }) {
        return storage
    }
    storage = sockaddr_storage()
    if withUnsafeMutablePointer(to: &storage, { pointer in
        pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { uv_ip6_addr(host, Int32(port), $0) } == 0
    }) {
        return storage
    }
    var request = uv_getaddrinfo_t()
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    hints.ai_flags = passive ? AI_PASSIVE : 0
    // A nil callback makes uv_getaddrinfo synchronous.
    try uvCheck(uv_getaddrinfo(loop.uvLoop, &request, nil, host, String(port), &hints), "uv_getaddrinfo \(host)")
    defer { uv_freeaddrinfo(request.addrinfo) }
    guard let first = request.addrinfo, let address = first.pointee.ai_addr else {
        throw ReactorError(.invalidArgument, operation: "uv_getaddrinfo \(host)", message: "no address found")
    }
    downpour_copy_sockaddr(&storage, address)
    return storage
}
