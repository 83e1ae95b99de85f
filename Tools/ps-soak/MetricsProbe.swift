import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads one figure from a server's Prometheus endpoint (`ps-server --metrics-port`).
///
/// The soak places its server kills by the session's progress (the model's version), not by the clock:
/// a session that runs faster than the calibration predicted still gets every kill, and each kill lands
/// after the previous incarnation has trained. A blocking request with a short timeout is enough: the
/// soak asks once a second, on 127.0.0.1, and a server that does not answer is simply asked again.
enum MetricsProbe {
    /// The value of the sample named `metric` (a line `metric VALUE`, without labels) at
    /// `http://127.0.0.1:port/metrics`.
    /// - Returns: nil if the server does not answer within `timeout` or the metric is not there.
    static func value(of metric: String, port: Int, timeout: Duration = .seconds(1)) -> Double? {
        guard let body = get(port: port, timeout: timeout) else { return nil }
        for line in body.split(separator: "\n") where line.hasPrefix(metric + " ") {
            return Double(line.dropFirst(metric.count + 1).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// The whole response to `GET /metrics`, headers and body, or nil on any failure.
    static func get(port: Int, timeout: Duration) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let (seconds, attoseconds) = timeout.components
        var limit = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let request = Array("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else { return nil }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        // Bounded: a metrics page is a few kilobytes; anything far larger is not one.
        while response.count < 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            guard n > 0 else { return nil }
            response += chunk[..<n]
        }
        return String(decoding: response, as: UTF8.self)
    }
}

/// A free TCP port on 127.0.0.1, found by binding to port 0.
///
/// The soak needs its ports before the server starts, because a killed server must come back on the
/// same one; another process could take the port in between, which the server then reports.
func freePort() -> Int? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    return bound ? Int(UInt16(bigEndian: address.sin_port)) : nil
}
