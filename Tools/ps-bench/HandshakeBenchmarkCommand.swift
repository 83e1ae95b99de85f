import ArgumentParser
import Reactor

/// `ps-bench handshakes`: new connections per second to one echo server.
///
/// Each cycle connects, completes the TLS 1.3 handshake (with `--tls-ca`; plaintext without, as the
/// baseline), echoes one 1-byte frame, so that the server's side of the handshake has finished too,
/// and closes; `--concurrency` cycles run at once, each starting the next as soon as its echo came
/// back. A warm-up comes first. The last line is one machine-readable summary of key=value pairs.
struct HandshakeBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "handshakes",
        abstract: "Measure new connections per second to an echo server (TLS 1.3 handshakes with --tls-ca).",
        discussion: "Start the server with `ps-bench echo-server --tls-cert ... --tls-key ...`. "
            + "The last line of output is a machine-readable summary (key=value pairs)."
    )

    @OptionGroup var endpoint: EchoEndpointOptions

    @OptionGroup var tls: ClientTLSOptions

    @Option(help: "How many connections to have in progress at once.")
    var concurrency = 8

    @OptionGroup var timing: EchoTimingOptions

    func validate() throws {
        guard endpoint.port > 0 else { throw ValidationError("--port must be within 1...65535") }
        guard (1...1_000).contains(concurrency) else { throw ValidationError("--concurrency must be within 1...1000") }
    }

    func run() throws {
        let loop = try EventLoop()
        let benchmark = HandshakeBenchmark(loop: loop, options: self, tls: try tls.context())
        benchmark.start()
        try loop.run(busyPolling: timing.busyPoll)
        try benchmark.report()
    }
}

/// One handshake-rate run on one loop.
///
/// - Warning: Loop thread only (the program's main thread, which runs the loop).
final class HandshakeBenchmark {
    private let loop: EventLoop
    private let options: HandshakeBenchmarkCommand
    private let tls: TLSContext?
    private let window: MeasurementWindow
    private var cycles = 0
    private var latencies = LatencyHistogram()
    private var cipherSuite: String?

    init(loop: EventLoop, options: HandshakeBenchmarkCommand, tls: TLSContext?) {
        self.loop = loop
        self.options = options
        self.tls = tls
        window = MeasurementWindow(loop: loop, timing: options.timing)
    }

    func start() {
        for _ in 0..<options.concurrency { cycle() }
        window.begin(onMeasure: { [self] in
            cycles = 0
            latencies = LatencyHistogram()
        })
    }

    /// Connects, handshakes, echoes one frame, closes, and starts the next cycle.
    private func cycle() {
        guard window.phase != .done else { return }
        let started = monotonicNanoseconds()
        FrameConnection.connect(loop: loop, host: options.endpoint.host, port: options.endpoint.port,
                                configuration: .init(maxFrameLength: 64), tls: tls, serverName: options.tls.serverName,
                                retryInterval: .milliseconds(100), deadline: .now + .seconds(10)) { [self] result in
            let connection: FrameConnection
            switch result {
            case .success(let connected):
                connection = connected
            case .failure(let error):
                return window.fail("connect: \(error)")
            }
            connection.onFrame = { [unowned self, unowned connection] _ in
                if cipherSuite == nil { cipherSuite = connection.tlsCipherSuite }
                connection.close()
                if window.phase == .measuring {
                    cycles += 1
                    latencies.record(monotonicNanoseconds() &- started)
                }
                cycle()
            }
            connection.onClose = { [unowned self] error in
                if let error { window.fail("connection closed: \(error)") }
            }
            connection.send(frame: [1])
        }
    }

    func report() throws {
        try window.checkSucceeded("handshakes")
        let elapsed = window.elapsedSeconds
        let rate = Double(cycles) / elapsed
        let p50 = latencies.percentile(0.50)
        let p99 = latencies.percentile(0.99)
        print("handshakes: transport=\(options.tls.transport) server=\(options.endpoint.host):\(options.endpoint.port) "
              + "concurrency=\(options.concurrency)" + (cipherSuite.map { " cipher=\($0)" } ?? ""))
        print("connections: \(format(rate, 0)) new connections/s (connect\(tls == nil ? "" : ", TLS handshake"), 1-byte echo, close)")
        print("latency_p50: \(format(p50, 1)) us")
        print("latency_p99: \(format(p99, 1)) us")
        print("summary transport=\(options.tls.transport) concurrency=\(options.concurrency) seconds=\(format(elapsed, 3)) "
              + "connections=\(cycles) connections_per_s=\(format(rate, 0)) p50_us=\(format(p50, 1)) p99_us=\(format(p99, 1))")
    }
}
