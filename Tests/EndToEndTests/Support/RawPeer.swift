import Foundation
import Messages
import WireCodec

/// A deliberately simple blocking TCP client that speaks Downpour's framing by hand, so tests can
/// send what a real worker never would: garbage, wrong versions, wrong dimensions, NaN.
final class RawPeer {
    private let socket: Int32

    /// Connects to 127.0.0.1:`port`; every receive gives up after `timeout`.
    init(port: Int, timeout: Duration = .seconds(30)) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw RawPeerError.system("socket", errno) }
        var tv = timeval(tv_sec: Int(timeout.seconds), tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let result = connectToLoopback(socket, port: port)
        guard result == 0 else {
            close(socket)
            throw RawPeerError.system("connect", errno)
        }
    }

    deinit {
        close(socket)
    }

    /// Sends raw bytes, exactly as given.
    func sendRaw(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw RawPeerError.system("send", errno) }
            sent += n
        }
    }

    /// Sends one frame holding `payload`.
    func sendFrame(_ payload: [UInt8]) throws {
        let length = UInt32(payload.count)
        try sendRaw(withUnsafeBytes(of: length.littleEndian) { Array($0) } + payload)
    }

    /// Sends one envelope in a frame.
    func send(_ body: Envelope.Body) throws {
        try sendFrame(Envelope(body: body).serializedBytes())
    }

    /// Receives the next envelope, or nil when the server closed the connection.
    func receive() throws -> Envelope? {
        guard let header = try receiveExactly(4) else { return nil }
        let length = header.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
        guard let payload = try receiveExactly(Int(length)) else { return nil }
        return try Envelope(serializedBytes: payload)
    }

    /// Receives envelopes until one matches, skipping the others; nil when the connection closed first.
    func receive(until predicate: (Envelope.Body) -> Bool) throws -> Envelope.Body? {
        while let envelope = try receive() {
            if let body = envelope.body, predicate(body) { return body }
        }
        return nil
    }

    /// Whether bytes (or the close) arrive within `timeout`, without reading them.
    func isReadable(within timeout: Duration) -> Bool {
        var entry = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        return Glibc.poll(&entry, 1, Int32(max(0, timeout.seconds * 1000))) > 0
    }

    /// Says `Hello` as a worker named `name` and reads up to the `Welcome`.
    /// - Returns: the Welcome, or nil if the server refused or closed.
    func join(as name: String, serverHeartbeats: Bool = false) throws -> Welcome? {
        var capabilities = Capabilities()
        capabilities.serverHeartbeats = serverHeartbeats
        try send(.hello(Hello(protocolVersion: 1, workerName: name, capabilities: capabilities)))
        guard case .welcome(let welcome)? = try receive(until: { if case .welcome = $0 { true } else { $0.isError } }) else {
            return nil
        }
        return welcome
    }

    /// Reads until the server closes the connection (a reset after the last bytes counts as a close).
    func readToEnd() throws -> [UInt8] {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if n == 0 || (n < 0 && errno == ECONNRESET) { return received }
            if n < 0 { throw RawPeerError.system("recv", errno) }
            received += chunk[..<n]
        }
    }

    private func receiveExactly(_ count: Int) throws -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var received = 0
        while received < count {
            let n = buffer[received...].withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if n == 0 { return nil }
            if n < 0 {
                if errno == ECONNRESET { return nil }
                throw RawPeerError.system("recv", errno)
            }
            received += n
        }
        return buffer
    }
}

enum RawPeerError: Error, CustomStringConvertible {
    case system(String, Int32)

    var description: String {
        switch self {
        case .system(let call, let code): "\(call): \(String(cString: strerror(code)))"
        }
    }
}

extension Envelope.Body {
    var isError: Bool {
        if case .error = self { return true }
        return false
    }

    var errorReport: ErrorReport? {
        if case .error(let report) = self { return report }
        return nil
    }
}
