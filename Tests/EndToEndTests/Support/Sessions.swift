import Foundation
import ParameterServer
import Testing

/// A session small enough for a debug build: a subset of MNIST and a narrow MLP.
private let tinySession = [
    "--train-samples", "3000", "--test-samples", "1000", "--hidden", "32", "--batch-size", "32",
    "--epochs", "2", "--heartbeat-timeout", "20",
]

/// `tinySession` with the exchange of one gradient per 32-sample unit (`--uncompressed`), so that the
/// suites about leases, churn and hostile peers have many small units to work with.
let smallSession = tinySession + ["--uncompressed"]

/// `tinySession` with ps-server's default exchange (local steps, sign pushes, q8 weights and deltas),
/// but 8 local steps instead of the default 16: on 3,000 samples, units of 32 x 16 would leave 6 per
/// epoch, too few rounds for the accuracy the suites compare.
let compressedSession = tinySession + ["--local-steps", "8"]

/// Starts `ps-server` on a free port and returns it with the port it printed.
func startServer(_ arguments: [String]) throws -> (server: RunningProcess, port: Int) {
    let server = try RunningProcess("ps-server", ["--port", "0"] + arguments)
    let line = try server.waitForLine(containing: "listening on 127.0.0.1:", timeout: .seconds(120))
    let afterColon = line.split(separator: "127.0.0.1:", maxSplits: 1).last ?? ""
    let port = Int(afterColon.prefix { $0.isNumber }) ?? 0
    try #require(port > 0, "no port in \"\(line)\"")
    return (server, port)
}

/// Starts a worker against 127.0.0.1:`port`, retrying every 0.2 s.
func startWorker(port: Int, name: String, _ extra: [String] = []) throws -> RunningProcess {
    try RunningProcess("ps-worker", ["127.0.0.1", String(port), "0.2", "--name", name] + extra)
}

/// A free TCP port on 127.0.0.1, for a server that must start after its workers.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    try #require(bound, "could not find a free port")
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Waits for the server to exit 0 and returns its summary line's fields.
func summary(of server: RunningProcess, timeout: Duration = .seconds(150)) throws -> [String: String] {
    let status = try server.waitForExit(timeout: timeout)
    let lines = server.output
    #expect(status == 0, "ps-server exited \(status):\n\(lines.suffix(30).joined(separator: "\n"))")
    let last = try #require(lines.last(where: { $0.hasPrefix("mode=") }), "no summary line:\n\(lines.suffix(30).joined(separator: "\n"))")
    return SummaryLine.parse(last[...])
}

extension Dictionary where Key == String, Value == String {
    func int(_ key: String) -> Int { Int(self[key] ?? "") ?? -1 }
    func double(_ key: String) -> Double { Double(self[key] ?? "") ?? -1 }
}
