import Reactor

/// A tiny HTTP/1.1 server for `GET /metrics`, on the event loop it is given.
///
/// Each connection serves one request and closes (`Connection: close`). A scraper can cost training
/// little: the request head is bounded (431 past ``Configuration/maxRequestBytes``), connections are
/// bounded in number (503 past ``Configuration/maxConnections``), in idle time and in queued bytes, and
/// the body is rendered once per request on the loop, from figures the session already keeps.
///
/// ```swift
/// let server = try MetricsHTTPServer(loop: loop, host: "127.0.0.1", port: 9100) {
///     metrics.exposition(snapshot)
/// }
/// print("metrics on http://\(server.localAddress)/metrics")
/// ```
///
/// - Warning: Loop thread only. `render` runs on the loop thread. The listener and connections call back
///   into this object: keep it alive until ``close()`` or until the loop stops (which closes them).
public final class MetricsHTTPServer {
    /// Limits for metrics connections.
    public struct Configuration: Sendable {
        /// The largest request head accepted, in bytes.
        public var maxRequestBytes = 8192
        /// Connections open at once; more are answered 503 and closed.
        public var maxConnections = 16
        /// A connection with nothing read or written for this long is closed.
        public var idleTimeout: Duration = .seconds(5)

        /// Creates the default limits: 8 KiB requests, 16 connections, 5 s idle.
        public init() {}
    }

    /// The content type of the Prometheus text exposition format.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The loop the server lives on.
    public let loop: EventLoop
    private let configuration: Configuration
    private var listener: TCPListener?
    private let render: () -> [UInt8]
    private var connections: [ObjectIdentifier: TCPConnection] = [:]
    /// Requests answered so far, by status (for tests and logs).
    public private(set) var responses: [HTTPStatus: Int] = [:]

    /// The bound port (the kernel's choice when created with port 0).
    public var localPort: Int { listener?.localPort ?? 0 }
    /// The bound address, as `"127.0.0.1:9100"`.
    public var localAddress: String { listener?.localAddress ?? "" }

    /// Binds and listens.
    ///
    /// - Parameters:
    ///   - loop: The loop to serve on (the session's own).
    ///   - host: The address to bind.
    ///   - port: The port, or 0 for a free one.
    ///   - configuration: Bounds on requests and connections.
    ///   - render: Returns the body of `GET /metrics`; runs on the loop thread for each scrape.
    /// - Throws: `ReactorError` if the address cannot be bound.
    /// - Warning: Loop thread only (or before the loop first runs).
    public init(loop: EventLoop, host: String, port: Int, configuration: Configuration = .init(),
                render: @escaping () -> [UInt8]) throws {
        self.loop = loop
        self.configuration = configuration
        self.render = render
        let connectionConfiguration = TCPConnection.Configuration(
            writeHighWaterMark: 1 << 20, maxQueuedWriteBytes: 8 << 20, idleTimeout: configuration.idleTimeout)
        listener = try TCPListener(loop: loop, host: host, port: port, backlog: 64,
                                   configuration: connectionConfiguration) { [unowned self] connection in
            self.accept(connection)
        }
        // Accept errors (too many open files) leave the listener running; nothing to do but carry on.
        listener?.onAcceptError = { _ in }
    }

    /// The response to a parsed request: only `GET` and `HEAD` of `/metrics`.
    ///
    /// - Parameters:
    ///   - head: The request head.
    ///   - render: Makes the exposition body; called only for a request that gets it.
    /// - Returns: The response to send.
    public static func respond(to head: HTTPRequestHead, render: () -> [UInt8]) -> HTTPResponse {
        guard head.path == "/metrics" else { return HTTPResponse(status: .notFound) }
        guard head.method == "GET" || head.method == "HEAD" else {
            var response = HTTPResponse(status: .methodNotAllowed)
            response.headers = [("Allow", "GET, HEAD")]
            return response
        }
        return HTTPResponse(status: .ok, contentType: contentType, body: render())
    }

    private func accept(_ connection: TCPConnection) {
        let id = ObjectIdentifier(connection)
        if connections.count >= configuration.maxConnections {
            send(HTTPResponse(status: .serviceUnavailable), on: connection)
            return
        }
        connections[id] = connection
        var parser = HTTPRequestParser(maxHeadBytes: configuration.maxRequestBytes)
        var answered = false
        var discarded = 0
        connection.onRead = { [unowned self, unowned connection] bytes in
            guard !answered else {
                // Bytes after the request (a body, pipelining) are read and dropped while the response
                // drains, so the close is not a reset; a peer that keeps sending is cut off.
                discarded += bytes.count
                if discarded > configuration.maxRequestBytes * 8 { connection.closeNow() }
                return
            }
            switch parser.feed(bytes) {
            case .needMore:
                return
            case .request(let head):
                answered = true
                let response = Self.respond(to: head, render: render)
                send(response, on: connection, includeBody: head.method != "HEAD")
            case .failure(let status):
                answered = true
                send(HTTPResponse(status: status), on: connection)
            }
        }
        connection.onClose = { [unowned self] _ in
            connections[id] = nil
        }
    }

    private func send(_ response: HTTPResponse, on connection: TCPConnection, includeBody: Bool = true) {
        responses[response.status, default: 0] += 1
        connection.write(response.serialized(includeBody: includeBody))
        // A lingering close: FIN once the response is written, then the connection closes when the peer
        // closes its side (or the idle timeout fires). Closing at once could reset unread request bytes
        // and lose the response.
        connection.shutdownWrite()
    }

    /// Stops listening and closes every metrics connection.
    ///
    /// - Warning: Loop thread only.
    public func close() {
        listener?.close()
        listener = nil
        for connection in Array(connections.values) { connection.closeNow() }
        connections.removeAll()
    }
}
