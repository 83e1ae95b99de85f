import ParameterServer

/// What the fleet did, counted as it happens and printed at the end.
struct FleetTally {
    /// What happened to one kind of process the fleet keeps running (workers, or shards).
    struct Counts {
        /// Processes kept running at once.
        var size = 0
        /// Processes started, replacements included.
        var started = 0
        /// Processes the churn SIGKILLed.
        var killed = 0
        /// Processes the churn stopped with SIGINT.
        var interrupted = 0
        /// Processes that exited without being asked (crash-after injection, a failure, a kill from
        /// outside such as ps-soak's), and were replaced.
        var exitedByThemselves = 0
    }

    /// The workers' figures.
    var workers = Counts()
    /// The shards' figures (all 0 without `--shards`).
    var shards = Counts()
    /// Processes still running when the stop timeout ran out, and SIGKILLed.
    var stragglers = 0
    /// Why the fleet stopped: `duration`, `SIGINT`, `SIGTERM`, `server-exited` or `failed`.
    var reason = ""

    /// The human-readable summary.
    var sentence: String {
        var text = "ps-fleet: started \(workers.started) workers, killed \(workers.killed), interrupted \(workers.interrupted), "
            + "\(workers.exitedByThemselves) exited by themselves"
        if shards.size > 0 {
            text += "; started \(shards.started) shards, killed \(shards.killed), \(shards.exitedByThemselves) exited by themselves"
        }
        return text + "; \(stragglers) straggler(s) killed at the end; stopped: \(reason)"
    }

    /// The last line ps-fleet prints: `key=value` pairs for scripts; the `shards` keys only with shards.
    func summary(seconds: Double, seed: UInt64, logDirectory: String) -> SummaryLine {
        var line = SummaryLine()
        line.add("workers", workers.size)
        line.add("started", workers.started)
        line.add("killed", workers.killed)
        line.add("interrupted", workers.interrupted)
        line.add("exited_by_themselves", workers.exitedByThemselves)
        if shards.size > 0 {
            line.add("shards", shards.size)
            line.add("shards_started", shards.started)
            line.add("shards_killed", shards.killed)
            // Every shard started after the first `size` replaced one that was killed or exited.
            line.add("shard_restarts", shards.started - shards.size)
            line.add("shards_exited_by_themselves", shards.exitedByThemselves)
        }
        line.add("stragglers", stragglers)
        line.add("reason", reason)
        line.add("seconds", seconds, digits: 1)
        line.add("seed", seed)
        line.add("log_dir", logDirectory)
        return line
    }
}
