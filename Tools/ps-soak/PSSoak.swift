import ArgumentParser
import ProcessTooling

/// `ps-soak --minutes M`: a server and a churning fleet for M minutes, the server killed and resumed
/// from its checkpoint along the way (and with `--shards`, shards killed and replaced), then checks
/// that nothing was lost, leaked or left behind.
@main
struct PSSoak: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps-soak",
        abstract: "Soak test: train for M minutes through worker churn and server crashes, then check the results.",
        discussion: """
            Starts ps-fleet (--workers workers, one killed or interrupted and replaced about every \
            --churn-every seconds) and a calibration session that measures how fast the fleet trains; then \
            a ps-server session sized to last about --minutes, which it SIGKILLs --server-kills times, evenly \
            through the session's updates, restarting it at once with --resume from its checkpoint on the \
            same port. Once a second it samples the server's RSS (VmRSS) and open descriptors (/proc/PID/fd). \
            After the session's summary it stops the fleet (SIGINT) and looks in /proc for any process of \
            the soak's still alive, and kills it.

            With --shards N the session is sharded (ps-server --shards N --snapshot-every 2, the calibration \
            too): the fleet runs N + --spare-shards ps-shard processes, and ps-soak SIGKILLs a shard holding a \
            range (picked at random, by the holder label on /metrics) --shard-kills times, evenly through the \
            session and never at a server kill's place; the server goes back to its last snapshot and the \
            fleet starts a replacement. Each shard's RSS and descriptors are sampled too.

            Checks, each printed PASS or FAIL with its figures: the session finished; test accuracy >= \
            --min-accuracy; units == units_expected; every kill done and resumed; the server's RSS and \
            descriptors flat (after --warmup seconds, each server's peak within its baseline plus \
            max(32 MiB, 25%) and plus workers + 8 descriptors, and no server above the first one's bound); \
            ps-fleet exited 0; no process left behind (workers and shards included). With --shards also: every \
            shard kill done, and at least as many rollbacks to a snapshot; each shard's RSS and descriptors \
            flat (the same bounds, workers + 8 descriptors). A table of the server's lives (and the \
            shards') comes first; the last line is a machine-readable summary (result=pass|fail failed= \
            test_accuracy= units= units_expected= applied_twice= server_kills= rss_growth_mib= fds_peak= \
            left_behind= ... log_dir=; with --shards also shards= shard_kills= rollbacks= shards_started= \
            shard_rss_growth_mib= shard_fds_peak=). Exit status 0 when every check passes, 1 otherwise.

            ps-server and ps-fleet are found next to ps-soak unless --server-binary or --fleet-binary is \
            given; ps-fleet finds ps-worker next to itself. Logs: --log-dir (default: a new temporary \
            directory, printed at start).

            Example: ps-soak --minutes 30
            """)

    @OptionGroup var options: SoakOptions

    func run() throws {
        // Before any thread starts: the ticker blocks the signals it waits for, in every thread.
        let settings = try options.runnerSettings()
        closeInheritedDescriptorsOnExec()
        let runner = try SoakRunner(settings: settings)
        if !runner.run() { throw ExitCode.failure }
    }
}
