import ArgumentParser
import Foundation
import Learning
import ParameterServer
import ProcessTooling

/// `ps-soak`'s command line: how long and how hard to soak, what must hold at the end, and where the
/// executables and logs are. Every value is checked in ``validate()``, before anything starts.
struct SoakOptions: ParsableArguments {
    @Option(help: ArgumentHelp("How long to soak, in minutes (fractions allowed); the session is sized to fit.", valueName: "minutes"))
    var minutes: Double = 30

    @Option(help: "Workers the fleet keeps running.")
    var workers = 4

    @Option(help: ArgumentHelp("Mean seconds between the fleet's churn events (a worker killed or interrupted, and replaced).", valueName: "seconds"))
    var churnEvery: Double = 10

    @Option(help: "The share of churn events that SIGKILL a worker rather than stop it with SIGINT.")
    var killFraction: Double = 0.5

    @Option(help: "Times the server is SIGKILLed and resumed from its checkpoint, evenly through the session.")
    var serverKills = 3

    @Option(help: "A sharded session: ps-server --shards N, and N ps-shard processes in the fleet (0: the server holds the parameters).")
    var shards = 0

    @Option(help: "ps-shard processes the fleet runs beyond --shards, waiting as spares to take a lost range.")
    var spareShards = 0

    @Option(help: "Times a shard holding a range is SIGKILLed (the fleet starts another), evenly through the session (default: 2 with --shards).")
    var shardKills: Int?

    @Option(help: "The test accuracy the session must reach, 0 to 1.")
    var minAccuracy: Double = 0.90

    @Option(help: ArgumentHelp("Seconds after each server starts training (or resumes) before its RSS and descriptors count (first evaluation, workers connecting).", valueName: "seconds"))
    var warmup: Double = 5

    @Option(help: "Hidden layer widths of the session's MLP (ps-server --hidden).")
    var hidden = "128"

    @Option(help: "Local steps per unit (ps-server --local-steps; its default exchange otherwise).")
    var localSteps = ServerSettings.defaultLocalSteps

    @Option(help: "Seeds the churn schedule and the server's weights and sample order (default: from the clock, printed at start).")
    var seed: UInt64?

    @Option(help: ArgumentHelp("Directory for the logs, created if missing (default: a new temporary directory).", valueName: "dir"))
    var logDir: String?

    @Option(help: ArgumentHelp("The ps-server executable (default: the one next to ps-soak).", valueName: "path"))
    var serverBinary: String?

    @Option(help: ArgumentHelp("The ps-fleet executable (default: the one next to ps-soak).", valueName: "path"))
    var fleetBinary: String?

    func validate() throws {
        guard minutes >= 0.25, minutes <= 24 * 60 else { throw ValidationError("--minutes must be from 0.25 to 1440, got \(minutes)") }
        guard (1...64).contains(workers) else { throw ValidationError("--workers must be 1...64, got \(workers)") }
        guard churnEvery >= 0.5, churnEvery.isFinite else { throw ValidationError("--churn-every must be at least 0.5 seconds") }
        guard (0...1).contains(killFraction) else { throw ValidationError("--kill-fraction must be from 0 to 1, got \(killFraction)") }
        guard (0...100).contains(serverKills) else { throw ValidationError("--server-kills must be 0...100, got \(serverKills)") }
        guard (0...16).contains(shards) else { throw ValidationError("--shards must be 0...16, got \(shards)") }
        guard (0...16).contains(spareShards) else { throw ValidationError("--spare-shards must be 0...16, got \(spareShards)") }
        if let shardKills { guard (0...100).contains(shardKills) else { throw ValidationError("--shard-kills must be 0...100, got \(shardKills)") } }
        guard shards > 0 || (spareShards == 0 && (shardKills ?? 0) == 0) else {
            throw ValidationError("--spare-shards and --shard-kills need --shards")
        }
        guard minAccuracy >= 0, minAccuracy.isFinite else { throw ValidationError("--min-accuracy must be a number from 0 up") }
        guard warmup >= 0, warmup.isFinite else { throw ValidationError("--warmup must not be negative") }
        guard (1...64).contains(localSteps) else { throw ValidationError("--local-steps must be 1...64, got \(localSteps)") }
        guard ModelDescription.hiddenWidths(parsing: hidden) != nil else {
            throw ValidationError("--hidden takes positive widths separated by commas, e.g. 128 or 256,128")
        }
        for (flag, path) in [("--server-binary", serverBinary), ("--fleet-binary", fleetBinary)] {
            if let path, !FileManager.default.isExecutableFile(atPath: path) {
                throw ValidationError("\(flag) \(path) is not an executable file")
            }
        }
    }

    /// The runner's settings: these options, with the seed, the log directory and the executables
    /// resolved (a seed from the clock, a new temporary directory, the executables next to ps-soak).
    /// - Throws: ``StartupError`` when an executable is missing or the log directory cannot be created.
    func runnerSettings() throws -> SoakRunner.Settings {
        SoakRunner.Settings(
            minutes: minutes, workers: workers, churnEvery: churnEvery, killFraction: killFraction,
            serverKills: serverKills, shards: shards, spareShards: spareShards, shardKills: shardKills ?? (shards > 0 ? 2 : 0),
            minAccuracy: minAccuracy, warmup: warmup,
            seed: seed ?? UInt64(UInt32(truncatingIfNeeded: Int(Date().timeIntervalSince1970 * 1000))),
            hidden: hidden, localSteps: localSteps, logDirectory: try ToolPaths.logDirectory(logDir, prefix: "ps-soak"),
            serverBinary: try serverBinary ?? ToolPaths.sibling("ps-server", flag: "--server-binary"),
            fleetBinary: try fleetBinary ?? ToolPaths.sibling("ps-fleet", flag: "--fleet-binary"))
    }
}
