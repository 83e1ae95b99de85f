import Foundation
import ParameterServer
import ProcessTooling

/// The soak's verdict: every check with PASS or FAIL and its figures, a table of the server's lives
/// (and of the shards' in a sharded soak), and a last `key=value` line for scripts.
struct SoakReport {
    /// One check's outcome.
    struct Check {
        let name: String
        let passed: Bool
        let figures: String
    }

    /// Growth allowed over a server's settled RSS: 32 MiB, or a quarter of the baseline when that is
    /// more. The settled server holds MNIST and the model; what moves after that is malloc's arenas
    /// breathing with the connections' write queues (a few weight frames per worker, under 1 MiB each
    /// for the soak's MLP), a few MiB. A leak per update, per unit or per connection, over the
    /// thousands of each a soak goes through, passes that within minutes; a quarter keeps the bound
    /// proportionate for a larger model.
    static func rssAllowance(_ baseline: Int) -> Int { max(32 << 20, baseline / 4) }

    /// Descriptors allowed over a server's (or a shard's) settled count: one per peer (the baseline may
    /// have been taken with some of them away, churned: workers, and for the server the shards too),
    /// plus 8 for what comes and goes (a churned worker's connection before its close is seen, the
    /// soak's metrics request, a checkpoint being written).
    static func descriptorAllowance(workers: Int) -> Int { workers + 8 }

    let checks: [Check]
    let rss: ResourceFlatness
    let descriptors: ResourceFlatness
    /// The shards' processes, each one life (a sharded soak; empty otherwise).
    let shardRSS: ResourceFlatness
    let shardDescriptors: ResourceFlatness
    private let settings: SoakRunner.Settings
    private let incarnations: [ServerIncarnation]
    private let shards: [ShardLives.Life]
    /// Times the session's servers went back to a snapshot because a shard was lost.
    private let rollbacks: Int
    private let summary: [String: String]
    private let fleet: FleetEnd?
    private let stragglers: [ProcessTree.Straggler]
    private let seconds: Double
    private let abort: String?
    private let plan: SessionPlan?
    private let calibrationRate: Double?

    init(settings: SoakRunner.Settings, plan: SessionPlan?, calibrationRate: Double?, incarnations: [ServerIncarnation],
         shards: [ShardLives.Life], summary: [String: String], abort: String?, fleet: FleetEnd?, stragglers: [ProcessTree.Straggler],
         seconds: Double) {
        self.settings = settings
        self.incarnations = incarnations
        self.shards = shards
        rollbacks = incarnations.map(\.rollbacks).reduce(0, +)
        self.summary = summary
        self.fleet = fleet
        self.stragglers = stragglers
        self.seconds = seconds
        self.abort = abort
        let samples = incarnations.map(\.samples)
        rss = ResourceFlatness(samples: samples, value: \.rssBytes, warmup: settings.warmup, allowance: Self.rssAllowance)
        let workers = settings.workers
        // The server is also connected to every shard, spares included.
        let serverPeers = workers + (settings.shards > 0 ? settings.shards + settings.spareShards : 0)
        descriptors = ResourceFlatness(samples: samples, value: \.descriptors, warmup: settings.warmup) { _ in
            Self.descriptorAllowance(workers: serverPeers)
        }
        let shardSamples = shards.map(\.samples)
        shardRSS = ResourceFlatness(samples: shardSamples, value: \.rssBytes, warmup: settings.warmup, allowance: Self.rssAllowance)
        shardDescriptors = ResourceFlatness(samples: shardSamples, value: \.descriptors, warmup: settings.warmup) { _ in
            Self.descriptorAllowance(workers: workers)
        }

        var checks: [Check] = []
        checks.append(Check(name: "session", passed: abort == nil && !summary.isEmpty,
                            figures: abort ?? "finished in \(summary["seconds"] ?? "?") s of training"))
        let accuracy = Double(summary["test_accuracy"] ?? "")
        checks.append(Check(
            name: "accuracy", passed: (accuracy ?? -1) >= settings.minAccuracy,
            figures: "\(accuracy.map { String(format: "%.4f", $0) } ?? "none") >= \(String(format: "%.4f", settings.minAccuracy)) required"))
        let units = Int(summary["units"] ?? ""), expected = Int(summary["units_expected"] ?? "")
        let appliedTwice = Int(summary["applied_twice"] ?? "")
        checks.append(Check(
            name: "work units", passed: units != nil && units == expected && appliedTwice == 0,
            figures: "\(units.map(String.init) ?? "?") of \(expected.map(String.init) ?? "?") applied, "
                + "\(appliedTwice.map(String.init) ?? "?") twice (requeued \(summary["requeued"] ?? "?"), "
                + "expired \(summary["expired"] ?? "?"), refused duplicates \(summary["duplicates"] ?? "?"))"))
        let killed = incarnations.filter(\.killed).count
        let resumed = incarnations.filter { $0.resumedLine != nil }.count
        checks.append(Check(
            name: "server kills", passed: killed == settings.serverKills && resumed == killed,
            figures: "\(killed) of \(settings.serverKills) done, \(resumed) resumed from the checkpoint"))
        checks.append(Self.flatnessCheck(name: "server RSS", rss, show: { $0.mebibytes },
                                         bound: "max(32 MiB, 25% of baseline)"))
        checks.append(Self.flatnessCheck(name: "server fds", descriptors, show: String.init,
                                         bound: "baseline + \(Self.descriptorAllowance(workers: serverPeers))"))
        if settings.shards > 0 {
            let shardKills = shards.filter(\.killed).count
            // Each kill of a holder sends the session back to a snapshot; a shard lost otherwise (silent
            // past the heartbeat timeout on a loaded machine) may add more, which costs time, not units.
            checks.append(Check(
                name: "shard kills", passed: shardKills == settings.shardKills && rollbacks >= shardKills,
                figures: "\(shardKills) of \(settings.shardKills) done; the session went back to a snapshot \(rollbacks) time(s)"))
            checks.append(Self.flatnessCheck(name: "shard RSS", shardRSS, show: { $0.mebibytes },
                                             bound: "max(32 MiB, 25% of baseline)", lives: "shard"))
            checks.append(Self.flatnessCheck(name: "shard fds", shardDescriptors, show: String.init,
                                             bound: "baseline + \(Self.descriptorAllowance(workers: workers))", lives: "shard"))
        }
        let fleetPassed = fleet?.termination == .exited(0)
        checks.append(Check(name: "fleet", passed: fleetPassed,
                            figures: "ps-fleet \(fleet?.termination?.description ?? "not started or not reaped"); "
                                + "workers started \(fleet?.totals["started"] ?? "?"), killed \(fleet?.totals["killed"] ?? "?"), "
                                + "interrupted \(fleet?.totals["interrupted"] ?? "?")"
                                + (settings.shards > 0 ? "; shards started \(fleet?.totals["shards_started"] ?? "?")" : "")))
        checks.append(Check(name: "left behind", passed: stragglers.isEmpty,
                            figures: stragglers.isEmpty ? "no process" : stragglers.map(\.description).joined(separator: "; ")))
        self.checks = checks
        self.plan = plan
        self.calibrationRate = calibrationRate
    }

    /// Whether every check passed.
    var passed: Bool { checks.allSatisfy(\.passed) }

    private static func flatnessCheck(name: String, _ flatness: ResourceFlatness, show: (Int) -> String, bound: String,
                                      lives: String = "server") -> Check {
        guard flatness.judged, let ceiling = flatness.ceiling, let maximum = flatness.maximum else {
            return Check(name: name, passed: false, figures: "not judged: no \(lives) lived \(ResourceFlatness.minimumSamples) samples past warm-up")
        }
        return Check(name: name, passed: flatness.passed,
                     figures: "largest growth \(show(flatness.largestGrowth)) within one \(lives) (bound \(bound)); "
                        + "peak \(show(maximum)) <= ceiling \(show(ceiling)) across \(lives)s")
    }

    /// Prints the servers' table, the checks and the summary line.
    func print() {
        say("")
        say("server  pid      lived    end        rss base     rss max      fds base  fds max")
        for (index, incarnation) in incarnations.enumerated() {
            let rssRow = rss.incarnations[index], fdRow = descriptors.incarnations[index]
            let end = incarnation.killed ? "SIGKILL" : (incarnation.process.termination?.description ?? "running")
            say(Self.pad(String(incarnation.number), 8) + Self.pad(String(incarnation.process.pid), 9)
                + Self.pad(String(format: "%.1fs", incarnation.process.uptime), 9)
                + Self.pad(end, 11)
                + Self.pad(rssRow.baseline?.mebibytes ?? "-", 13) + Self.pad(rssRow.maximum?.mebibytes ?? "-", 13)
                + Self.pad(fdRow.baseline.map(String.init) ?? "-", 10) + (fdRow.maximum.map(String.init) ?? "-"))
        }
        say("(baselines: the first sample \(String(format: "%g", settings.warmup))s after each server started training or resumed; "
            + "\"-\": too short to judge)")
        if !shards.isEmpty {
            say("")
            say("shard     pid      lived    end        rss base     rss max      fds base  fds max")
            for (index, life) in shards.enumerated() {
                let rssRow = shardRSS.incarnations[index], fdRow = shardDescriptors.incarnations[index]
                let lived = (life.samples.last?.sinceTraining).map { String(format: "%.1fs", $0) } ?? "-"
                let end = life.killed ? "SIGKILL" : (life.ended ? "ended" : "running")
                say(Self.pad(life.name, 10) + Self.pad(String(life.pid), 9) + Self.pad(lived, 9) + Self.pad(end, 11)
                    + Self.pad(rssRow.baseline?.mebibytes ?? "-", 13) + Self.pad(rssRow.maximum?.mebibytes ?? "-", 13)
                    + Self.pad(fdRow.baseline.map(String.init) ?? "-", 10) + (fdRow.maximum.map(String.init) ?? "-"))
            }
            say("(shards as the soak found them during the session; baselines: the first sample \(String(format: "%g", settings.warmup))s "
                + "after the soak first saw each)")
        }
        say("")
        for check in checks {
            say(Self.pad(check.name, 14) + (check.passed ? "PASS  " : "FAIL  ") + check.figures)
        }
        say("")
        say(line.description)
    }

    /// The last line: `result=pass failed=- ...`.
    var line: SummaryLine {
        var line = SummaryLine()
        line.add("result", passed ? "pass" : "fail")
        line.add("failed", checks.filter { !$0.passed }.map { $0.name.replacingOccurrences(of: " ", with: "_") }.joined(separator: ","))
        line.add("test_accuracy", summary["test_accuracy"] ?? "-")
        line.add("min_accuracy", settings.minAccuracy)
        line.add("units", summary["units"] ?? "-")
        line.add("units_expected", summary["units_expected"] ?? "-")
        line.add("requeued", summary["requeued"] ?? "-")
        line.add("duplicates", summary["duplicates"] ?? "-")
        line.add("applied_twice", summary["applied_twice"] ?? "-")
        line.add("expired", summary["expired"] ?? "-")
        line.add("server_kills", incarnations.filter(\.killed).count)
        line.add("server_kills_requested", settings.serverKills)
        if settings.shards > 0 {
            line.add("shards", settings.shards)
            line.add("spare_shards", settings.spareShards)
            line.add("shard_kills", shards.filter(\.killed).count)
            line.add("shard_kills_requested", settings.shardKills)
            line.add("rollbacks", rollbacks)
            line.add("shards_started", fleet?.totals["shards_started"] ?? "-")
            line.add("shard_rss_growth_mib", Double(shardRSS.largestGrowth) / 1_048_576, digits: 1)
            line.add("shard_fds_peak", shardDescriptors.maximum ?? 0)
        }
        line.add("rss_growth_mib", Double(rss.largestGrowth) / 1_048_576, digits: 1)
        line.add("rss_peak_mib", Double(rss.maximum ?? 0) / 1_048_576, digits: 1)
        line.add("rss_ceiling_mib", Double(rss.ceiling ?? 0) / 1_048_576, digits: 1)
        line.add("fds_peak", descriptors.maximum ?? 0)
        line.add("fds_ceiling", descriptors.ceiling ?? 0)
        line.add("epochs", plan?.epochs ?? 0)
        line.add("train_samples", plan?.trainSamples ?? 0)
        line.add("calibrated_samples_per_second", calibrationRate ?? 0, digits: 0)
        line.add("workers", settings.workers)
        line.add("workers_started", fleet?.totals["started"] ?? "-")
        line.add("workers_killed", fleet?.totals["killed"] ?? "-")
        line.add("workers_interrupted", fleet?.totals["interrupted"] ?? "-")
        line.add("left_behind", stragglers.count)
        line.add("seconds", seconds, digits: 1)
        line.add("seed", settings.seed)
        line.add("log_dir", settings.logDirectory)
        return line
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
}
