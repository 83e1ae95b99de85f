import Foundation
import ParameterServer
import Testing

/// `ps-soak` run briefly against the real `ps-server`, `ps-fleet` and `ps-worker`: a passing soak prints
/// every check as PASS and exits 0; an impossible accuracy threshold fails that check and exits 1.
/// Each soak is bounded by ps-soak's own deadlines and by the suite's time limit.
@Suite(.timeLimit(.minutes(8)))
struct SoakToolTests {
    /// The checks ps-soak prints, in order.
    static let checkNames = ["session", "accuracy", "work units", "server kills", "server RSS", "server fds", "fleet", "left behind"]

    @Test func shortSoakPassesEveryCheck() throws {
        // Half a minute, 2 workers churning every 8 s (a debug-build worker can take 10 s and more to load
        // MNIST on a busy machine: churn much faster and few of them ever train), 1 server kill and
        // resume; a warm-up of 2 s, so that servers this short-lived still have their memory and
        // descriptors judged.
        let (status, lines) = try soak(["--minutes", "0.5", "--workers", "2", "--churn-every", "8", "--server-kills", "1",
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

    @Test func impossibleAccuracyFailsThatCheck() throws {
        let (status, lines) = try soak(["--minutes", "0.25", "--workers", "1", "--server-kills", "0", "--min-accuracy", "1.01",
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

    @Test(arguments: [
        (["--minutes", "0.1"], "--minutes must be from 0.25 to 1440"),
        (["--workers", "0"], "--workers must be 1...64"),
        (["--kill-fraction", "2"], "--kill-fraction must be from 0 to 1"),
        (["--hidden", "wide"], "--hidden takes positive widths"),
        (["--server-binary", "/nonexistent/ps-server"], "is not an executable file"),
    ])
    func badFlagsAreRejected(arguments: [String], message: String) throws {
        let (status, lines) = try soak(arguments, timeout: .seconds(60))
        #expect(status == 64)
        #expect(lines.joined(separator: "\n").contains(message), "\(lines)")
    }

    @Test func helpDescribesEveryFlag() throws {
        let (status, lines) = try soak(["--help"], timeout: .seconds(60))
        let help = lines.joined(separator: "\n")
        #expect(status == 0)
        for flag in [
            "--minutes", "--workers", "--churn-every", "--kill-fraction", "--server-kills", "--min-accuracy", "--warmup",
            "--hidden", "--seed", "--log-dir", "--server-binary", "--fleet-binary", "result=pass|fail", "Exit status 0",
        ] {
            #expect(help.contains(flag), "--help does not mention \(flag)")
        }
    }

    /// Runs ps-soak to its end, its logs in a fresh directory, and returns its status and output.
    private func soak(_ arguments: [String], timeout: Duration = .seconds(420)) throws -> (status: Int32, lines: [String]) {
        let logs = FileManager.default.temporaryDirectory.appendingPathComponent("ps-soak-test-\(UUID().uuidString)").path
        let process = try RunningProcess("ps-soak", arguments + ["--log-dir", logs])
        defer { process.end() }
        let status = try process.waitForExit(timeout: timeout)
        return (status, process.output)
    }
}
