import Foundation
import Messages
import WireCodec

/// A client socket to 127.0.0.1 for attacks that a framed client cannot make: connecting without a
/// handshake, dribbling bytes, thousands at once (non-blocking), announcing absurd frame lengths.
///
/// Closed when released.
final class HostileSocket {
    let descriptor: Int32

    /// Starts connecting to 127.0.0.1:`port`. With `blocking` false the connect may still be under way;
    /// see ``waitUntilConnected(_:timeout:)``.
    init(port: Int, blocking: Bool = true) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw RawPeerError.system("socket", errno) }
        if !blocking { _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK) }
        let result = connectToLoopback(descriptor, port: port)
        guard result == 0 || (!blocking && errno == EINPROGRESS) else {
            let code = errno
            close(descriptor)
            throw RawPeerError.system("connect", code)
        }
    }

    deinit {
        close(descriptor)
    }

    /// Our end's port: the server logs a peer as `127.0.0.1:PORT`.
    var localPort: Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Sends `bytes`; false when the server has already closed the connection.
    func send(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) == $0.count }
    }

    /// Reads and discards whatever arrives until the server closes the connection or `timeout` passes.
    /// - Returns: Whether the server closed it (end of stream or reset).
    func waitForClose(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let left = deadline - .now
            guard left > .zero else { return false }
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = Glibc.poll(&entry, 1, Int32(max(1, left.seconds * 1000)))
            if ready < 0 && errno != EINTR { return false }
            guard ready > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n == 0 || (n < 0 && errno == ECONNRESET) { return true }
        }
    }

    /// Reads one frame already waiting (the socket need not be blocking) and decodes it as an Envelope.
    /// - Returns: The envelope, or `nil` when no whole frame is there or it is not an Envelope.
    func readWaitingEnvelope() -> Envelope? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        guard n >= 4 else { return nil }
        let length = Int(UInt32(buffer[0]) | UInt32(buffer[1]) << 8 | UInt32(buffer[2]) << 16 | UInt32(buffer[3]) << 24)
        guard n >= 4 + length else { return nil }
        return try? Envelope(serializedBytes: buffer[4..<(4 + length)])
    }

    /// Waits until every socket in `sockets` (started with `blocking: false`) has connected.
    /// - Throws: `RawPeerError` for a connect that failed or did not finish before `timeout`.
    static func waitUntilConnected(_ sockets: [HostileSocket], timeout: Duration) throws {
        let deadline = ContinuousClock.now + timeout
        var pending = sockets.map { pollfd(fd: $0.descriptor, events: Int16(POLLOUT), revents: 0) }
        while !pending.isEmpty {
            let left = deadline - .now
            guard left > .zero else { throw RawPeerError.system("connect (\(pending.count) still pending)", ETIMEDOUT) }
            let ready = Glibc.poll(&pending, nfds_t(pending.count), Int32(max(1, left.seconds * 1000)))
            if ready < 0 && errno != EINTR { throw RawPeerError.system("poll", errno) }
            for entry in pending where entry.revents != 0 {
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(entry.fd, SOL_SOCKET, SO_ERROR, &error, &length)
                if error != 0 { throw RawPeerError.system("connect", error) }
            }
            pending.removeAll { $0.revents != 0 }
            for index in pending.indices { pending[index].revents = 0 }
        }
    }

    /// Waits for frames on `sockets` and decodes the first one each sends, until `count` sockets have
    /// sent one or `timeout` passes.
    /// - Returns: The envelopes, in no particular order; a frame that is not an Envelope is left out.
    static func firstEnvelopes(from sockets: [HostileSocket], count: Int, timeout: Duration) -> [Envelope] {
        let byDescriptor = Dictionary(uniqueKeysWithValues: sockets.map { ($0.descriptor, $0) })
        var waiting = sockets.map { pollfd(fd: $0.descriptor, events: Int16(POLLIN), revents: 0) }
        var envelopes: [Envelope] = []
        var heard = 0
        let deadline = ContinuousClock.now + timeout
        while heard < count, ContinuousClock.now < deadline {
            _ = Glibc.poll(&waiting, nfds_t(waiting.count), 100)
            for entry in waiting where entry.revents != 0 {
                heard += 1
                if let envelope = byDescriptor[entry.fd]?.readWaitingEnvelope() { envelopes.append(envelope) }
            }
            waiting.removeAll { $0.revents != 0 }
        }
        return envelopes
    }
}
