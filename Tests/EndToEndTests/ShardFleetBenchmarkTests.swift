import Foundation
import ParameterServer
import Testing

/// `ps-bench fleet --shards M`, briefly: the server, two in-process shards and the synthetic workers
/// must make a sharded session in which both shards apply updates, or Benchmarks/parameter-server-fleet.md's
/// "Shards" figures cannot be remade.
@Suite(.timeLimit(.minutes(2)))
struct ShardFleetBenchmarkTests {
    @Test(arguments: [[String](), ["--uncompressed", "--pull-every-unit"]])
    func fleetBenchmarkWithTwoShardsReportsWhatEachShardApplied(extra: [String]) throws {
        let bench = try RunningProcess("ps-bench", ["fleet", "--shards", "2", "--workers", "2", "--parameters", "20001",
                                                    "--warmup", "0.5", "--seconds", "1", "--runs", "2"] + extra)
        #expect(try bench.waitForExit(timeout: .seconds(90)) == 0, "\(bench.output)")
        let summary = try #require(bench.output.last { $0.hasPrefix("summary ") }, "\(bench.output)")
        let fields = SummaryLine.parse(summary.dropFirst("summary ".count))
        #expect(fields.int("shards") == 2, "\(summary)")
        #expect(fields.int("shard0_updates") > 0 && fields.int("shard1_updates") > 0, "\(summary)")
        #expect(fields.int("updates_measured") > 0, "\(summary)")
        #expect((Double(fields["samples_per_s"] ?? "") ?? 0) > 0, "\(summary)")
        #expect(fields.int("rejected") == 0, "\(summary)")
        // One line per shard, with its applied updates and its loop thread's CPU.
        #expect(bench.output.contains { $0.hasPrefix("shard_0: ") && $0.contains("updates applied") }, "\(bench.output)")
        #expect(bench.output.contains { $0.hasPrefix("shard_1: ") && $0.contains("cores (its loop thread)") }, "\(bench.output)")
    }

    @Test func fleetBenchmarkRefusesShardsWithTLS() throws {
        let bench = try RunningProcess("ps-bench", ["fleet", "--shards", "1", "--tls-cert", "c.pem", "--tls-key", "k.pem",
                                                    "--tls-ca", "ca.pem"])
        #expect(try bench.waitForExit(timeout: .seconds(30)) != 0)
        #expect(bench.output.contains { $0.contains("--shards with TLS is not supported") }, "\(bench.output)")
    }
}
