import Foundation

/// A blocking TCP client socket to 127.0.0.1 with a deadline on every wait: just what the fuzz target
/// needs to play a peer, and nothing that could hide the server's behaviour (no framing of its own).
struct BlockingSocket: ~Copyable {
    private let descriptor: Int32

    /// Connects to 127.0.0.1:`port`.
    init(port: Int) {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { fatalError("FuzzServerConnection: socket() failed: errno \(errno)") }
        // Each input is a couple of small writes: without this, Nagle holds the second back for the
        // first's delayed acknowledgement (40 ms), which would make the fuzzer crawl.
        var one: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        // The server's listener is gone or its backlog never drains: it is dead, which is a finding.
        guard result == 0 else { fatalError("FuzzServerConnection: cannot connect to the server: errno \(errno)") }
    }

    deinit {
        close(descriptor)
    }

    /// Writes all of `bytes`; false if the server closed the connection first (which it may).
    func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = send(descriptor, bytes.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    /// Says that nothing more will be written (the server sees end of stream).
    func finishWriting() {
        shutdown(descriptor, Int32(SHUT_WR))
    }

    /// Reads whatever arrives until `deadline`; an empty array means the server closed the
    /// connection, `nil` that the deadline passed first.
    func read(until deadline: ContinuousClock.Instant) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let left = deadline - .now
            guard left > .zero else { return nil }
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(min(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1, 60_000))
            let ready = poll(&poller, 1, milliseconds)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if n > 0 { return Array(buffer[..<n]) }
            if n < 0 && errno == EINTR { continue }
            return [] // end of stream, or reset by the server: closed either way
        }
    }
}
