import Foundation
import ParameterServer
import Testing

/// `ps-soak` run briefly against the real `ps-server`, `ps-fleet` and `ps-worker`: a passing soak prints
/// every check as PASS and exits 0; an impossible accuracy threshold fails that check and exits 1.
/// Each soak is bounded by ps-soak's own deadlines and by the suite's time limit. Serialized: each soak
/// is a server and a fleet loading MNIST in a debug build, and three at once on two cores starved the
/// rest of a parallel run (Reactor tests ran out their 60 s limits).
@Suite(.serialized, .timeLimit(.minutes(8)))
struct SoakToolTests {
    /// The checks ps-soak prints, in order.
    static let checkNames = ["session", "accuracy", "work units", "server kills", "server RSS", "server fds", "fleet", "left behind"]

    @Test func shortSoakPassesEveryCheck() async throws {
        // Half a minute, 2 workers churning every 8 s (a debug-build worker can take 10 s and more to load
        // MNIST on a busy machine: churn much faster and few of them ever train), 1 server kill and
        // resume; a warm-up of 2 s, so that servers this short-lived still have their memory and
        // descriptors judged.
        let (status, lines) = try await soak(["--minutes", "0.5", "--workers", "2", "--churn-every", "8", "--server-kills", "1",
                                        "--warmup", "2", "--seed", "1"])
        let output = lines.joined(separator: "\n")
        #expect(status == 0, "ps-soak exited \(status):\n\(output)")
        for name in Self.checkNames {
            #expect(lines.contains { $0.hasPrefix(name) && $0.contains(" PASS ") }, "no PASS line for \(name):\n\(output)")
        }
        let summary = SummaryLine.parse((lines.last ?? "")[...])
        #expect(summary["result"] == "pass")
        #expect(summary["failed"] == "-")
        #expect(summary.int("units") > 0 && summary.int("units") == summary.int("units_expected"))
        #expect(summary.int("server_kills") == 1)
        #expect(summary.int("left_behind") == 0)
        #expect(lines.contains { $0.contains("resumed session") })
    }

    @Test func shortShardedSoakPassesEveryCheck() async throws {
        // Two shards and a spare, one shard killed and one server kill, in half a minute: every unit still
        // applied exactly once, the kill sent the session back to a snapshot, and the shards' processes
        // are judged flat and gone at the end like the rest.
        let (status, lines) = try await soak(["--minutes", "0.5", "--workers", "2", "--churn-every", "8", "--server-kills", "1",
                                              "--shards", "2", "--spare-shards", "1", "--shard-kills", "1", "--warmup", "2", "--seed", "1"])
        let output = lines.joined(separator: "\n")
        #expect(status == 0, "ps-soak exited \(status):\n\(output)")
        for name in Self.checkNames + ["shard kills", "shard RSS", "shard fds"] {
            #expect(lines.contains { $0.hasPrefix(name) && $0.contains(" PASS ") }, "no PASS line for \(name):\n\(output)")
        }
        let summary = SummaryLine.parse((lines.last ?? "")[...])
        #expect(summary["result"] == "pass")
        #expect(summary.int("units") > 0 && summary.int("units") == summary.int("units_expected"))
        #expect(summary.int("applied_twice") == 0)
        #expect(summary.int("shards") == 2)
        #expect(summary.int("shard_kills") == 1)
        #expect(summary.int("rollbacks") >= 1)
        // The killed shard was replaced: three to begin with, and at least one more.
        #expect(summary.int("shards_started") >= 4)
        #expect(summary.int("left_behind") == 0)
        #expect(lines.contains { $0.contains("going back to the snapshot") })
    }

    @Test func impossibleAccuracyFailsThatCheck() async throws {
        let (status, lines) = try await soak(["--minutes", "0.25", "--workers", "1", "--server-kills", "0", "--min-accuracy", "1.01",
                                        "--warmup", "2", "--seed", "2"])
        let output = lines.joined(separator: "\n")
        #expect(status == 1, "ps-soak exited \(status):\n\(output)")
        #expect(lines.contains { $0.hasPrefix("accuracy") && $0.contains(" FAIL ") && $0.contains(">= 1.0100 required") }, "\(output)")
        let summary = SummaryLine.parse((lines.last ?? "")[...])
        #expect(summary["result"] == "fail")
        #expect(summary["failed"]?.split(separator: ",").contains("accuracy") == true, "\(output)")
        // Failing a check does not skip the clean-up.
        #expect(summary.int("left_behind") == 0)
        #expect(lines.contains { $0.hasPrefix("left behind") && $0.contains(" PASS ") }, "\(output)")
    }

    @Test func aProcessLeftBehindFailsTheSoakAndIsKilled() async throws {
        // A fleet "binary" that leaves an orphan behind: a sleep started in a subshell that exits at once,
        // so init adopts it and neither its parent nor its process group leads back to the soak; only
        // the PS_SOAK_ID marker it inherited does. Then it runs the real ps-fleet.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ps-soak-orphan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = directory.appendingPathComponent("leaky-fleet").path
        let fleet = RunningProcess.productsDirectory.appendingPathComponent("ps-fleet").path
        try "#!/bin/sh\n(sleep 3117 </dev/null >/dev/null 2>&1 &)\nexec '\(fleet)' \"$@\"\n".write(toFile: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)

        let (status, lines) = try await soak(["--minutes", "0.25", "--workers", "1", "--server-kills", "0", "--warmup", "2",
                                        "--seed", "3", "--fleet-binary", script])
        let output = lines.joined(separator: "\n")
        #expect(status == 1, "ps-soak exited \(status):\n\(output)")
        let check = try #require(lines.first { $0.hasPrefix("left behind") }, "\(output)")
        #expect(check.contains(" FAIL ") && check.contains("sleep 3117"), "\(check)")
        let summary = SummaryLine.parse((lines.last ?? "")[...])
        #expect(summary["failed"] == "left_behind", "\(output)")
        #expect(summary.int("left_behind") == 1)
        // ps-soak killed it: its PID, printed in the check, names no live process (init reaps it).
        let pid = try #require(Int32(check.split(separator: "pid ").last?.prefix { $0.isNumber } ?? ""))
        var gone = false
        for _ in 0..<50 where !gone {
            gone = kill(pid, 0) != 0 || (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8))?.contains("3117") != true
            if !gone { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(gone, "the orphan (pid \(pid)) is still running")
    }

    @Test(arguments: [
        (["--minutes", "0.1"], "--minutes must be from 0.25 to 1440"),
        (["--workers", "0"], "--workers must be 1...64"),
        (["--kill-fraction", "2"], "--kill-fraction must be from 0 to 1"),
        (["--hidden", "wide"], "--hidden takes positive widths"),
        (["--server-binary", "/nonexistent/ps-server"], "is not an executable file"),
        (["--shards", "17"], "--shards must be 0...16"),
        (["--shards", "2", "--spare-shards", "17"], "--spare-shards must be 0...16"),
        (["--spare-shards", "1"], "--spare-shards and --shard-kills need --shards"),
        (["--shard-kills", "1"], "--spare-shards and --shard-kills need --shards"),
    ])
    func badFlagsAreRejected(arguments: [String], message: String) async throws {
        let (status, lines) = try await soak(arguments, timeout: .seconds(60))
        #expect(status == 64)
        #expect(lines.joined(separator: "\n").contains(message), "\(lines)")
    }

    @Test func helpDescribesEveryFlag() async throws {
        let (status, lines) = try await soak(["--help"], timeout: .seconds(60))
        let help = lines.joined(separator: "\n")
        #expect(status == 0)
        for flag in [
            "--minutes", "--workers", "--churn-every", "--kill-fraction", "--server-kills", "--min-accuracy", "--warmup",
            "--hidden", "--seed", "--log-dir", "--server-binary", "--fleet-binary", "result=pass|fail", "Exit status 0",
            "--shards", "--spare-shards", "--shard-kills", "rollbacks=",
        ] {
            #expect(help.contains(flag), "--help does not mention \(flag)")
        }
    }

    /// Runs ps-soak to its end, its logs in a fresh directory, and returns its status and output.
    ///
    /// It waits by sleeping between short checks rather than blocking: a soak takes a minute or two,
    /// and a test blocking a thread that long starves the rest of a parallel run (swift-testing runs
    /// on a pool as wide as the machine has cores: two here), whose own time limits then expire.
    private func soak(_ arguments: [String], timeout: Duration = .seconds(420)) async throws -> (status: Int32, lines: [String]) {
        let logs = FileManager.default.temporaryDirectory.appendingPathComponent("ps-soak-test-\(UUID().uuidString)").path
        let process = try RunningProcess("ps-soak", arguments + ["--log-dir", logs])
        defer { process.end() }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = try? process.waitForExit(timeout: .milliseconds(10)) { return (status, process.output) }
            try await Task.sleep(for: .milliseconds(250))
        }
        return (try process.waitForExit(timeout: .seconds(1)), process.output)
    }
}
