import ArgumentParser
import Foundation
import ParameterServer
import ProcessTooling
import Reactor

/// `ps-fleet HOST [PORT] --workers N [--shards M]`: runs a fleet of `ps-worker` processes (and `ps-shard`
/// processes for a sharded server) for demos and soak tests, kills and replaces them on a seeded
/// schedule, and stops them all cleanly.
@main
struct PSFleet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps-fleet",
        abstract: "Run N ps-worker processes against a server, with seeded churn, for demos and soak tests.",
        discussion: """
            Starts --workers workers named fleet-1, fleet-2, ... (ps-worker is found next to ps-fleet unless \
            --worker-binary is given); their output goes to one log file each in --log-dir. With --churn-every, \
            at random intervals averaging that many seconds, a random worker is killed with SIGKILL (or, for \
            the share of events --kill-fraction leaves over, stopped with SIGINT) and a new one takes its place. \
            A worker that exits by itself (say --inject crash-after=30s) is replaced too. A worker takes a few \
            seconds to load MNIST and join, so churn much faster than that mostly replaces workers that never \
            trained. The same --seed and \
            --workers give the same churn schedule. Each action prints one line, stamped with the time since \
            start:

              +12.3s killed fleet-3 (pid 1234); started fleet-7 (pid 1250)

            For a sharded server (ps-server --shards M), --shards keeps that many ps-shard processes running \
            as well (more than M: the rest wait as spares), named shard-1, shard-2, ..., started before the \
            workers, with the same HOST PORT and --retry, plus --shard-args; ps-shard is found next to ps-fleet \
            unless --shard-binary is given, and each logs to shard-K.log in --log-dir. With --shard-churn-every, \
            at random intervals averaging that many seconds, a random shard is killed with SIGKILL and a new one \
            takes its place (the server goes back to its last snapshot). A shard that exits by itself is \
            replaced too.

            The fleet stops after --duration, when the process --server-pid exits, or on Ctrl-C (SIGINT) or \
            SIGTERM: every worker gets SIGINT and leaves gracefully; whoever is still running after \
            --stop-timeout is killed; every worker is reaped before ps-fleet exits. A second Ctrl-C kills \
            them at once. The last line printed is a machine-readable summary of key=value pairs (workers=, \
            started=, killed=, interrupted=, exited_by_themselves=, with --shards also shards=, shards_started=, \
            shards_killed=, shard_restarts=, shards_exited_by_themselves=; then stragglers=, reason=, seconds=, \
            seed=, log_dir=). ps-fleet exits 0, or 1 if workers or shards could not be started or kept running.

            Example: ps-fleet 127.0.0.1 8888 --workers 4 --churn-every 10 --seed 7 --inject delay=20ms
            """)

    @OptionGroup var options: FleetOptions

    func run() throws {
        unblockTerminationSignals()
        unblockChildSignals()
        closeInheritedDescriptorsOnExec()
        let executable = try options.workerBinary ?? ToolPaths.sibling("ps-worker", flag: "--worker-binary")
        let shardExecutable = options.shards > 0 ? try options.shardBinary ?? ToolPaths.sibling("ps-shard", flag: "--shard-binary") : nil
        if let serverPid = options.serverPid, !processIsAlive(serverPid) {
            throw StartupError("--server-pid \(serverPid): no such process")
        }
        let logDirectory = try ToolPaths.logDirectory(options.logDir, prefix: "ps-fleet")
        let seed = options.seed ?? UInt64(UInt32(truncatingIfNeeded: Int(Date().timeIntervalSince1970 * 1000)))
        say("ps-fleet: \(options.workers) workers against \(options.host):\(options.port), \(options.churnDescription), seed \(seed)")
        say("ps-fleet: \(options.shards > 0 ? "worker and shard" : "worker") logs in \(logDirectory)")

        let configuration = options.supervisorConfiguration(
            executable: executable, shardExecutable: shardExecutable, logDirectory: logDirectory, seed: seed)
        let loop = try EventLoop()
        let fleet = FleetSupervisor(configuration: configuration, loop: loop) { say($0) }
        fleet.onFinished = { loop.stop() }
        let watchers = [
            try loop.watchSignal(SIGINT) { fleet.stop(reason: "SIGINT") },
            try loop.watchSignal(SIGTERM) { fleet.stop(reason: "SIGTERM") },
        ]
        try fleet.start()
        try loop.run()
        withExtendedLifetime(watchers) {}

        say(fleet.tally.sentence)
        say(fleet.tally.summary(seconds: fleet.elapsed, seed: seed, logDirectory: logDirectory).description)
        if fleet.failed { throw ExitCode.failure }
    }
}
