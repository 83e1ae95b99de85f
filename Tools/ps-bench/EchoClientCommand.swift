import ArgumentParser
import Reactor

#if canImport(Glibc)
import Glibc
#endif

/// `ps-bench echo`: drives an echo server and measures it.
///
/// Ping-pong keeps one frame in flight per connection and reports round trips per second and latency
/// percentiles; pipelined keeps `--window` frames in flight per connection and reports frames and
/// megabytes (10⁶ payload bytes, one direction) per second. A warm-up comes first. The last line is
/// one machine-readable summary of key=value pairs. With `--tls-ca` every connection speaks TLS 1.3.
struct EchoClientCommand: ParsableCommand {
    enum Mode: String, ExpressibleByArgument, CaseIterable, Sendable {
        case pingpong, pipelined
    }

    static let configuration = CommandConfiguration(
        commandName: "echo",
        abstract: "Measure an echo server: round trips and latency (pingpong) or throughput (pipelined).",
        discussion: "The last line of output is a machine-readable summary (key=value pairs)."
    )

    @OptionGroup var endpoint: EchoEndpointOptions

    @OptionGroup var tls: ClientTLSOptions

    @Option(help: "How many connections to drive at once.")
    var connections = 1

    @Option(help: "The payload size of each frame, in bytes.")
    var size = 64

    @Option(help: "pingpong (one frame in flight per connection) or pipelined (--window frames in flight).")
    var mode = Mode.pingpong

    @Option(help: "Frames in flight per connection in pipelined mode.")
    var window = 128

    @OptionGroup var timing: EchoTimingOptions

    func validate() throws {
        guard endpoint.port > 0 else { throw ValidationError("--port must be within 1...65535") }
        guard (1...10_000).contains(connections) else { throw ValidationError("--connections must be within 1...10000") }
        guard (0...(64 << 20)).contains(size) else { throw ValidationError("--size must be within 0...67108864") }
        guard (1...100_000).contains(window) else { throw ValidationError("--window must be within 1...100000") }
    }

    func run() throws {
        let loop = try EventLoop()
        let benchmark = EchoBenchmark(loop: loop, options: self, tls: try tls.context())
        benchmark.start()
        try loop.run(busyPolling: timing.busyPoll)
        try benchmark.report()
    }
}

/// One echo benchmark run on one loop.
///
/// - Warning: Loop thread only (the program's main thread, which runs the loop).
final class EchoBenchmark {
    private let loop: EventLoop
    private let options: EchoClientCommand
    private let tls: TLSContext?
    private let window: MeasurementWindow
    private var connections: [FrameConnection] = []

    /// What the per-frame callbacks update. Behind pointers, so the hot path has no dynamic
    /// exclusivity checks and no reference counting (the client must not limit what it measures).
    private struct Tally {
        var measuring = false
        var frames = 0
        var wrongSizes = 0
        var latencies = LatencyHistogram()
    }
    private let tally: UnsafeMutablePointer<Tally>
    /// When each connection's frame in flight was sent (ping-pong).
    private let sentAt: UnsafeMutablePointer<UInt64>

    init(loop: EventLoop, options: EchoClientCommand, tls: TLSContext?) {
        self.loop = loop
        self.options = options
        self.tls = tls
        window = MeasurementWindow(loop: loop, timing: options.timing)
        tally = .allocate(capacity: 1)
        tally.initialize(to: Tally())
        sentAt = .allocate(capacity: options.connections)
        sentAt.initialize(repeating: 0, count: options.connections)
    }

    deinit {
        tally.deinitialize(count: 1)
        tally.deallocate()
        sentAt.deallocate()
    }

    func start() {
        var configuration = FrameConnection.Configuration()
        configuration.maxFrameLength = max(options.size, 1)
        for index in 0..<options.connections {
            FrameConnection.connect(loop: loop, host: options.endpoint.host, port: options.endpoint.port, configuration: configuration,
                                    tls: tls, serverName: options.tls.serverName,
                                    retryInterval: .milliseconds(200), deadline: .now + .seconds(10)) { [self] result in
                switch result {
                case .success(let connection):
                    connected(connection, index: index)
                case .failure(let error):
                    window.fail("connect: \(error)")
                }
            }
        }
    }

    private func connected(_ connection: FrameConnection, index: Int) {
        guard window.phase == .preparing else { return connection.closeNow() }
        connections.append(connection)
        let pingPong = options.mode == .pingpong
        let size = options.size
        let tally = self.tally
        let sentAt = self.sentAt
        // The connection lives while its socket is open, and onFrame only runs then: borrowing an
        // unretained reference keeps reference counting out of the per-frame path.
        let unretained = Unmanaged.passUnretained(connection)
        connection.onFrame = { payload in
            if payload.count != size { tally.pointee.wrongSizes &+= 1 }
            if pingPong {
                let now = monotonicNanoseconds()
                if tally.pointee.measuring {
                    tally.pointee.latencies.record(now &- sentAt[index])
                    tally.pointee.frames &+= 1
                }
                sentAt[index] = now
            } else if tally.pointee.measuring {
                tally.pointee.frames &+= 1
            }
            // Send the payload straight back: for a large frame this hands its buffer over, no copy.
            unretained._withUnsafeGuaranteedRef { $0.send(frame: payload) }
        }
        connection.onClose = { [unowned(unsafe) self] error in
            window.fail("connection \(index) closed: \(error.map { "\($0)" } ?? "by the server")")
        }
        if connections.count == options.connections { begin() }
    }

    private func begin() {
        let template = [UInt8](repeating: 0xA5, count: options.size)
        let inFlight = options.mode == .pingpong ? 1 : options.window
        let now = monotonicNanoseconds()
        for (index, connection) in connections.enumerated() {
            sentAt[index] = now
            for _ in 0..<inFlight { connection.send(frame: template) }
        }
        let tally = self.tally
        window.begin(onMeasure: {
            tally.pointee = Tally()
            tally.pointee.measuring = true
        }, onEnd: {
            tally.pointee.measuring = false
        })
    }

    func report() throws {
        try window.checkSucceeded("echo")
        let frames = tally.pointee.frames
        let wrongSizes = tally.pointee.wrongSizes
        let latencies = tally.pointee.latencies
        let elapsed = window.elapsedSeconds
        let rate = Double(frames) / elapsed
        let megabytes = rate * Double(options.size) / 1e6
        let p50 = latencies.percentile(0.50)
        let p99 = latencies.percentile(0.99)
        print("echo: mode=\(options.mode.rawValue) transport=\(options.tls.transport) server=\(options.endpoint.host):\(options.endpoint.port) connections=\(options.connections) size=\(options.size)"
              + (options.mode == .pipelined ? " window=\(options.window)" : ""))
        switch options.mode {
        case .pingpong:
            print("ping_pongs: \(format(rate, 0)) roundtrips/s")
            print("latency_p50: \(format(p50, 1)) us")
            print("latency_p99: \(format(p99, 1)) us")
        case .pipelined:
            print("frames: \(format(rate, 0)) frames/s")
            print("throughput: \(format(megabytes, 1)) MB/s")
        }
        if wrongSizes > 0 { print("warning: \(wrongSizes) frames came back with the wrong size") }
        var summary = "summary mode=\(options.mode.rawValue) transport=\(options.tls.transport) connections=\(options.connections) size=\(options.size)"
        summary += " window=\(options.mode == .pingpong ? 1 : options.window) seconds=\(format(elapsed, 3)) frames=\(frames)"
        summary += " frames_per_s=\(format(rate, 0)) mb_per_s=\(format(megabytes, 1))"
        if options.mode == .pingpong { summary += " p50_us=\(format(p50, 1)) p99_us=\(format(p99, 1))" }
        summary += " wrong_sizes=\(wrongSizes)"
        print(summary)
    }
}

/// Round-trip times, in buckets of 0.1 µs up to 10 ms and of 100 µs up to 10 s.
struct LatencyHistogram {
    private static let fineBuckets = 100_000
    private static let coarseBuckets = 100_000
    private var buckets = [UInt32](repeating: 0, count: fineBuckets + coarseBuckets + 1)
    private var count = 0

    @inline(__always)
    mutating func record(_ nanoseconds: UInt64) {
        let fine = Int(nanoseconds / 100)
        let index = fine < Self.fineBuckets
            ? fine
            : Self.fineBuckets + min(Int(nanoseconds / 100_000), Self.coarseBuckets)
        buckets[index] &+= 1
        count += 1
    }

    /// The `fraction` percentile in microseconds (0 when empty).
    func percentile(_ fraction: Double) -> Double {
        guard count > 0 else { return 0 }
        let target = max(1, Int((Double(count) * fraction).rounded(.up)))
        var seen = 0
        for (index, bucketCount) in buckets.enumerated() {
            seen += Int(bucketCount)
            if seen >= target {
                return index < Self.fineBuckets ? Double(index) / 10 : Double(index - Self.fineBuckets) * 100
            }
        }
        return Double(Self.coarseBuckets) * 100
    }
}

@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// `value` with `digits` decimals, without Foundation.
func format(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (value * scale).rounded()
    if digits == 0 { return String(Int64(scaled)) }
    let whole = Int64(scaled / scale)
    let fraction = Int64(abs(scaled) - abs(Double(whole)) * scale)
    let fractionText = String(fraction)
    return "\(value < 0 && whole == 0 ? "-" : "")\(whole).\(String(repeating: "0", count: digits - fractionText.count))\(fractionText)"
}
