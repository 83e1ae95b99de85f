import ParameterServer

/// What the fleet did, counted as it happens and printed at the end.
struct FleetTally {
    /// Workers kept running at once.
    var size = 0
    /// Workers started, replacements included.
    var started = 0
    /// Workers the churn SIGKILLed.
    var killed = 0
    /// Workers the churn stopped with SIGINT.
    var interrupted = 0
    /// Workers that exited without being asked (crash-after injection, a failure), and were replaced.
    var exitedByThemselves = 0
    /// Workers still running when the stop timeout ran out, and SIGKILLed.
    var stragglers = 0
    /// Why the fleet stopped: `duration`, `SIGINT`, `SIGTERM`, `server-exited` or `failed`.
    var reason = ""

    /// The human-readable summary.
    var sentence: String {
        "ps-fleet: started \(started) workers, killed \(killed), interrupted \(interrupted), "
            + "\(exitedByThemselves) exited by themselves, \(stragglers) straggler(s) killed at the end; stopped: \(reason)"
    }

    /// The last line ps-fleet prints: `key=value` pairs for scripts.
    func summary(seconds: Double, seed: UInt64, logDirectory: String) -> SummaryLine {
        var line = SummaryLine()
        line.add("workers", size)
        line.add("started", started)
        line.add("killed", killed)
        line.add("interrupted", interrupted)
        line.add("exited_by_themselves", exitedByThemselves)
        line.add("stragglers", stragglers)
        line.add("reason", reason)
        line.add("seconds", seconds, digits: 1)
        line.add("seed", seed)
        line.add("log_dir", logDirectory)
        return line
    }
}
