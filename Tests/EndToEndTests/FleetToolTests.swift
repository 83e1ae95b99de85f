import Foundation
import ParameterServer
import Testing

/// `ps-fleet` against a real `ps-server` on 127.0.0.1: churn, graceful stops, flag validation, and no
/// worker left behind. Each test is bounded in time; every process is ended by PID.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct FleetToolTests {
    @Test func churnedFleetCompletesTheSessionAndLeavesNoWorkerBehind() throws {
        // Slowed workers (150 ms per unit) make 4 epochs outlast several churn events. Churn every 3 s
        // on average, not 1 s: a debug-build worker takes 2 to 5 s to load MNIST, and one killed sooner
        // never joins, so faster churn would test little but start-up.
        let (server, port) = try startServer(smallSession + ["--workers", "3", "--epochs", "4"])
        defer { server.end() }
        let fleet = try RunningProcess("ps-fleet", [
            "127.0.0.1", String(port), "--workers", "3", "--churn-every", "3", "--seed", "1",
            "--inject", "delay=150ms", "--retry", "0.2", "--server-pid", String(server.pid), "--duration", "240",
        ])
        defer { fleet.endGracefully() }

        let fields = try summary(of: server, timeout: .seconds(240))
        // Every unit applied once despite the kills, and the replacements joined.
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("joins") > 3)

        // The fleet notices the server is gone, stops its workers and says what it did.
        let status = try fleet.waitForExit(timeout: .seconds(60))
        let lines = fleet.output
        #expect(status == 0, "ps-fleet exited \(status):\n\(lines.suffix(20).joined(separator: "\n"))")
        #expect(lines.contains { $0.contains(" killed fleet-") && $0.contains("; started fleet-") })
        let last = try #require(lines.last, "ps-fleet printed nothing")
        let totals = SummaryLine.parse(last[...])
        #expect(totals["reason"] == "server-exited")
        #expect(totals.int("workers") == 3)
        #expect(totals.int("killed") >= 1)
        #expect(totals.int("started") == 3 + totals.int("killed") + totals.int("interrupted") + totals.int("exited_by_themselves"))
        expectAllEnded(fleetOutput: lines, started: totals.int("started"))
    }

    @Test func shardedSessionWithChurnedShardsAppliesEveryUnitOnce() throws {
        // Two ranges, three ps-shard processes (one a spare) and one killed every 3 s on average: each
        // holder's death sends the session back to its last snapshot (every 0.5 s), and the fleet starts
        // a replacement. Slowed workers make 3 epochs outlast a few kills.
        let (server, port) = try startServer(smallSession + ["--workers", "2", "--epochs", "3", "--shards", "2", "--snapshot-every", "0.5"])
        defer { server.end() }
        let fleet = try RunningProcess("ps-fleet", [
            "127.0.0.1", String(port), "--workers", "2", "--shards", "3", "--shard-churn-every", "3", "--seed", "1",
            "--inject", "delay=100ms", "--retry", "0.2", "--server-pid", String(server.pid), "--duration", "240",
        ])
        defer { fleet.endGracefully() }

        let fields = try summary(of: server, timeout: .seconds(240))
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("applied_twice") == 0)
        #expect(fields.int("shards") == 2)
        let status = try fleet.waitForExit(timeout: .seconds(60))
        let lines = fleet.output
        #expect(status == 0, "ps-fleet exited \(status):\n\(lines.suffix(20).joined(separator: "\n"))")
        let totals = SummaryLine.parse(try #require(lines.last, "ps-fleet printed nothing")[...])
        #expect(totals["reason"] == "server-exited")
        #expect(totals.int("shards") == 3)
        #expect(totals.int("shards_killed") >= 1)
        #expect(totals.int("shard_restarts") >= totals.int("shards_killed"))
        // A holder killed sends the session back (a spare killed does not): as many rollbacks as the
        // server saw holders lost.
        let lost = server.output.filter { $0.contains(" lost: ") && $0.contains("going back to the snapshot") }.count
        #expect(fields.int("rollbacks") == lost)
        expectAllEnded(fleetOutput: lines, started: totals.int("started"))
        expectAllEnded(fleetOutput: lines, started: totals.int("shards_started"), prefix: "shard-")
    }

    @Test func interruptedFleetStopsItsWorkersGracefully() throws {
        // No server: the workers keep retrying, and SIGINT must still end every one of them.
        let port = try freePort()
        let fleet = try RunningProcess("ps-fleet", [
            "127.0.0.1", String(port), "--workers", "2", "--churn-every", "0.5", "--kill-fraction", "0",
            "--seed", "2", "--retry", "0.2", "--duration", "120",
        ])
        defer { fleet.endGracefully() }
        // A kill fraction of 0: every churn event stops its worker with SIGINT instead of SIGKILL.
        try fleet.waitForLine(containing: " interrupted fleet-", timeout: .seconds(60))
        let (lines, totals) = try stop(fleet, with: SIGINT)
        #expect(totals["reason"] == "SIGINT")
        #expect(totals.int("killed") == 0)
        #expect(totals.int("interrupted") >= 1)
        #expect(lines.contains { $0.hasSuffix("all workers have ended") })
        expectAllEnded(fleetOutput: lines, started: totals.int("started"))
    }

    @Test func workersThatExitByThemselvesAreReplaced() throws {
        let port = try freePort()
        let fleet = try RunningProcess("ps-fleet", [
            "127.0.0.1", String(port), "--workers", "1", "--seed", "4", "--inject", "crash-after=1s",
            "--retry", "0.2", "--duration", "120",
        ])
        defer { fleet.endGracefully() }
        // The injected crash is a SIGKILL the worker sends itself; the fleet did not ask for it.
        let line = try fleet.waitForLine(containing: "exited by itself", timeout: .seconds(60))
        #expect(line.contains("fleet-1") && line.contains("killed by signal 9") && line.contains("; started fleet-2"))
        let (lines, totals) = try stop(fleet, with: SIGTERM)
        #expect(totals["reason"] == "SIGTERM")
        #expect(totals.int("exited_by_themselves") >= 1)
        #expect(totals.int("killed") == 0)
        expectAllEnded(fleetOutput: lines, started: totals.int("started"))
    }

    @Test func shardsAreKeptRunningChurnedAndEnded() throws {
        // A stand-in for ps-shard that just waits to be signalled: this is the supervision (start, SIGKILL
        // churn, replacement, stop, reaping), not the protocol. No server: the workers keep retrying.
        let directory = try standInShard("exec sleep 3119")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (shard, logs) = (directory.appendingPathComponent("shard").path, directory.appendingPathComponent("logs").path)
        let port = try freePort()
        let fleet = try RunningProcess("ps-fleet", [
            "127.0.0.1", String(port), "--workers", "1", "--shards", "2", "--shard-binary", shard, "--shard-churn-every", "0.3",
            "--shard-args", "--listen-host 127.0.0.1", "--seed", "5", "--retry", "0.2", "--log-dir", logs, "--duration", "120",
        ])
        defer { fleet.endGracefully() }
        try fleet.waitForLines(containing: " killed shard-", count: 2, timeout: .seconds(60))
        let (lines, totals) = try stop(fleet, with: SIGINT)
        #expect(totals["reason"] == "SIGINT")
        #expect(totals.int("shards") == 2)
        #expect(totals.int("shards_killed") >= 2)
        #expect(totals.int("shards_started") == 2 + totals.int("shards_killed") + totals.int("shards_exited_by_themselves"))
        #expect(totals.int("shard_restarts") == totals.int("shards_started") - 2)
        #expect(totals.int("killed") == 0 && totals.int("started") == 1)
        #expect(lines.contains { $0.hasSuffix("all workers and shards have ended") })
        // Each shard was started with the server's address, its name and --shard-args, and logs in --log-dir.
        #expect(FileManager.default.fileExists(atPath: logs + "/shard-1.log") && FileManager.default.fileExists(atPath: logs + "/shard-3.log"))
        expectAllEnded(fleetOutput: lines, started: totals.int("started"))
        expectAllEnded(fleetOutput: lines, started: totals.int("shards_started"), prefix: "shard-")
    }

    @Test func shardCommandLine() throws {
        // What a shard is started with: the server, --name and --shard-args (a script that prints them and waits).
        let directory = try standInShard("echo \"args: $*\"\nexec sleep 3121")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (shard, logs) = (directory.appendingPathComponent("shard").path, directory.appendingPathComponent("logs").path)
        let fleet = try RunningProcess("ps-fleet", [
            "127.0.0.1", "9", "--workers", "1", "--shards", "1", "--shard-binary", shard, "--shard-args", "--listen-host 127.0.0.1 --once",
            "--retry", "0.5", "--log-dir", logs, "--duration", "120",
        ])
        defer { fleet.endGracefully() }
        try fleet.waitForLine(containing: "started shard-1", timeout: .seconds(60))
        // A file's first line has no event to wait for: look for it, for at most 5 s.
        var log = ""
        for _ in 0..<100 where !log.contains("\n") {
            log = (try? String(contentsOfFile: logs + "/shard-1.log", encoding: .utf8)) ?? ""
            if !log.contains("\n") { usleep(50_000) }
        }
        #expect(log == "args: 127.0.0.1 9 0.5 --name shard-1 --listen-host 127.0.0.1 --once\n")
        fleet.send(SIGTERM)
        #expect(try fleet.waitForExit(timeout: .seconds(30)) == 0)
    }

    @Test func workersThatCannotStartMakeTheFleetGiveUp() throws {
        let (status, output) = try runToCompletion("ps-fleet", [
            "127.0.0.1", "--workers", "2", "--seed", "3", "--worker-args", "--no-such-flag",
        ])
        #expect(status == 1)
        let lines = output.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.contains("giving up") })
        // The end of the failing worker's log is shown, so the operator sees why.
        #expect(lines.contains { $0.contains("Unknown option '--no-such-flag'") })
        let totals = SummaryLine.parse((lines.last ?? "")[...])
        #expect(totals["reason"] == "failed")
        expectAllEnded(fleetOutput: lines, started: totals.int("started"))
    }

    @Test(arguments: [
        (["--workers", "0"], "--workers must be 1...1000"),
        (["--workers", "2", "--kill-fraction", "1.5"], "--kill-fraction must be from 0 to 1"),
        (["--workers", "2", "--churn-every", "0"], "--churn-every must be at least 0.1"),
        (["--workers", "2", "--worker-args", "--name x"], "must not contain --name"),
        (["--workers", "2", "--inject", "delay=fast"], "--inject: delay=fast"),
        (["--workers", "2", "--worker-binary", "/nonexistent/ps-worker"], "is not an executable file"),
        (["--churn-every", "1"], "Missing expected argument '--workers <workers>'"),
        (["--workers", "2", "--shards", "300"], "--shards must be 0...256"),
        (["--workers", "2", "--shard-churn-every", "1"], "--shard-churn-every, --shard-args and --shard-binary need --shards"),
        (["--workers", "2", "--shards", "2", "--shard-churn-every", "0"], "--shard-churn-every must be at least 0.1"),
        (["--workers", "2", "--shards", "2", "--shard-args", "--name x"], "--shard-args must not contain --name"),
        (["--workers", "2", "--shards", "2", "--shard-binary", "/nonexistent/ps-shard"], "is not an executable file"),
    ])
    func badFlagsAreRejected(arguments: [String], message: String) throws {
        let (status, output) = try runToCompletion("ps-fleet", ["127.0.0.1", "8888"] + arguments)
        #expect(status == 64)
        #expect(output.contains(message), "\(output)")
    }

    @Test func helpDescribesEveryFlag() throws {
        let (status, help) = try runToCompletion("ps-fleet", ["--help"])
        #expect(status == 0)
        for flag in [
            "<host>", "<port>", "--workers", "--churn-every", "--kill-fraction", "--seed", "--duration",
            "--server-pid", "--worker-args", "--inject", "--retry", "--stop-timeout", "--log-dir", "--worker-binary",
            "--shards", "--shard-churn-every", "--shard-args", "--shard-binary", "shard_restarts=",
            "killed fleet-3 (pid 1234); started fleet-7 (pid 1250)", "key=value",
        ] {
            #expect(help.contains(flag), "--help does not mention \(flag)")
        }
    }

    /// Signals the fleet to stop and waits for its summary line and its exit (status 0 expected).
    /// - Returns: Everything it printed, and its summary line's fields.
    private func stop(_ fleet: RunningProcess, with signal: Int32) throws -> (lines: [String], totals: [String: String]) {
        fleet.send(signal)
        let last = try fleet.waitForLine(containing: "reason=", timeout: .seconds(60))
        #expect(try fleet.waitForExit(timeout: .seconds(30)) == 0)
        return (fleet.output, SummaryLine.parse(last[...]))
    }

    /// Checks that every worker (or, with `prefix` "shard-", every shard) the fleet printed a PID for is
    /// gone, and that it printed one per start.
    private func expectAllEnded(fleetOutput lines: [String], started: Int, prefix: String = "fleet-") {
        var pids = Set<Int32>()
        // "... started fleet-7 (pid 1250)": the PID after each start (other lines name the server's too).
        for line in lines {
            for part in line.split(separator: "started \(prefix)").dropFirst() {
                guard let afterPid = part.split(separator: "(pid ", maxSplits: 1).dropFirst().first,
                      let pid = Int32(afterPid.prefix { $0.isNumber }) else { continue }
                pids.insert(pid)
            }
        }
        #expect(pids.count == started, "\(pids.count) PIDs printed for \(started) \(prefix)* started")
        for pid in pids.sorted() {
            let alive = kill(pid, 0) == 0
            #expect(!alive && errno == ESRCH, "\(prefix)* pid \(pid) is still there after ps-fleet exited")
        }
    }
}

/// A new temporary directory holding `shard`, a shell script running `body`: a stand-in for ps-shard.
private func standInShard(_ body: String) throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ps-fleet-shard-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let script = directory.appendingPathComponent("shard").path
    try "#!/bin/sh\n\(body)\n".write(toFile: script, atomically: true, encoding: .utf8)
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
    return directory
}

/// Runs a product that exits on its own (a `--help`, a rejected flag) and returns its status and output.
private func runToCompletion(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(60)) throws -> (status: Int32, output: String) {
    let process = try RunningProcess(executable, arguments)
    defer { process.end() }
    let status = try process.waitForExit(timeout: timeout)
    return (status, process.output.joined(separator: "\n"))
}
