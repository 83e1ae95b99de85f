import ProcessTooling

/// One life of the soak's server, from its start to its exit or SIGKILL, with what the soak saw of it.
final class ServerIncarnation {
    /// 1 for the session's first server, 2 for the first resumed one, ...
    let number: Int
    let process: ChildProcess
    let log: LogFollower
    /// Its RSS and descriptors, once a second.
    private(set) var samples: [ResourceSample] = []
    /// The `resumed session` line it printed, if it was started with `--resume`.
    private(set) var resumedLine: String?
    /// The model version the soak saw last, from the metrics endpoint.
    private(set) var version: Int? {
        didSet {
            if let version, firstVersion == nil { firstVersion = (.now, version) }
        }
    }
    /// The first version the soak saw, and when.
    private var firstVersion: (time: ContinuousClock.Instant, version: Int)?
    /// Whether the soak killed it.
    var killed = false
    /// Times it sent a sharded session back to its last snapshot because a shard was lost.
    private(set) var rollbacks = 0
    /// When it started training, or resumed: the end of its start-up (loading MNIST takes seconds in a
    /// debug build), from which its warm-up is counted.
    private var trainingSince: ContinuousClock.Instant?

    init(number: Int, process: ChildProcess) {
        self.number = number
        self.process = process
        log = LogFollower(path: process.logPath)
    }

    /// Reads the server's new log lines.
    /// - Returns: The lines worth showing as they happen (a resume, a rollback), for the soak to print.
    func pollLog() -> [String] {
        var notable: [String] = []
        for line in log.poll() {
            if line.hasPrefix("resumed session") {
                resumedLine = line
                notable.append(line)
            }
            // "shard 1 (shard-2) lost: ...; going back to the snapshot at version 1200 ..."
            if line.hasPrefix("shard "), line.contains(" lost: "), line.contains("going back to the snapshot") {
                rollbacks += 1
                notable.append(line)
            }
            if trainingSince == nil, line.hasPrefix("training started") || line.hasPrefix("resumed session") {
                trainingSince = .now
            }
        }
        return notable
    }

    /// Samples RSS and descriptors (first, while no metrics connection of the soak's is open), then asks
    /// the metrics endpoint for the model's version.
    func sample(metricsPort: Int) {
        guard process.reap() == nil else { return }
        if let sample = ResourceSample.read(pid: process.pid, sinceTraining: trainingSeconds) {
            samples.append(sample)
        }
        if let value = MetricsProbe.value(of: "downpour_model_version", port: metricsPort) {
            version = Int(value)
        }
    }

    /// Seconds since it started training or resumed, nil before.
    var trainingSeconds: Double? { trainingSince.map { (.now - $0).seconds } }

    /// Units (async updates) a second this server has trained since the soak first saw its version,
    /// nil until a few seconds have passed.
    var unitsPerSecond: Double? {
        guard let firstVersion, let version else { return nil }
        let seconds = (ContinuousClock.now - firstVersion.time).seconds
        return seconds >= 3 ? Double(version - firstVersion.version) / seconds : nil
    }

    /// The summary line, once the server has printed it.
    var summary: String? { log.lastLine(startingWith: "mode=") }

    /// The last `count` lines of its log, to show why it failed.
    func logTail(_ count: Int) -> [String] {
        log.poll()
        return Array(log.lines.suffix(count))
    }
}
