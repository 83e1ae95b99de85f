import Foundation
import Messages
@testable import ParameterServer
import Testing

/// Sharded sessions with real processes on 127.0.0.1: `ps-server --shards M`, `ps-shard`s holding the
/// ranges and `ps-worker`s exchanging slices with all of them.
@Suite(.serialized, .timeLimit(.minutes(6)))
struct ShardTests {
    /// Starts a `ps-shard` against 127.0.0.1:`port`, retrying every 0.2 s, listening on a free port.
    static func startShard(port: Int, name: String, _ extra: [String] = []) throws -> RunningProcess {
        try RunningProcess("ps-shard", ["127.0.0.1", String(port), "0.2", "--name", name] + extra)
    }

    /// Sync mode with one fp32 gradient per unit is deterministic for a seed and two workers, and every
    /// parameter's arithmetic is the same whichever process holds it: a session sharded over two
    /// shards ends bit for bit where the unsharded one does.
    @Test func aShardedSessionTrainsExactlyAsTheUnshardedOne() throws {
        let session = smallSession + ["--mode", "sync", "--workers", "2", "--seed", "5"]
        let (reference, referencePort) = try startServer(session)
        defer { reference.end() }
        let referenceWorkers = try (1...2).map { try startWorker(port: referencePort, name: "ref-\($0)", ["--once"]) }
        defer { referenceWorkers.forEach { $0.end() } }
        let unsharded = try summary(of: reference)

        let (server, port) = try startServer(session + ["--shards", "2"])
        defer { server.end() }
        let shards = try (1...2).map { try Self.startShard(port: port, name: "shard-\($0)", ["--once"]) }
        defer { shards.forEach { $0.end() } }
        let workers = try (1...2).map { try startWorker(port: port, name: "w\($0)", ["--once"]) }
        defer { workers.forEach { $0.end() } }
        let sharded = try summary(of: server)

        #expect(sharded.int("shards") == 2)
        #expect(sharded.int("units") == sharded.int("units_expected"))
        #expect(sharded.int("applied_twice") == 0)
        #expect(sharded["final_version"] == unsharded["final_version"])
        #expect(sharded["test_accuracy"] == unsharded["test_accuracy"], "sharded \(sharded), unsharded \(unsharded)")
        #expect(sharded["test_loss"] == unsharded["test_loss"])
        // The parameters travel between workers and shards, not through the server.
        #expect(sharded.int("shard_bytes_in") > 10 * sharded.int("bytes_in"), "\(sharded)")
        for shard in shards { #expect(try shard.waitForExit(timeout: .seconds(30)) == 0) }
        for worker in workers { #expect(try worker.waitForExit(timeout: .seconds(30)) == 0) }
    }

    /// The default exchange (local steps, 8 of them here, sign pushes, q8 weights and deltas) in sync mode over three
    /// shards: every round's pulls wait for its version at every shard (a sync session stalled when a
    /// shard answered them a stride of versions late), every unit is applied once, and the accuracy is
    /// close to the unsharded session's (87.3% unsharded, 87.0% over three shards, release builds with
    /// the local rate scaled to the batch; 85.4 to 85.6% and 83.5 to 85.6% before: the sign blocks of the
    /// slices differ from the whole push's).
    @Test func theDefaultExchangeTrainsOverThreeShards() throws {
        let session = compressedSession + ["--workers", "2", "--epochs", "5", "--mode", "sync", "--seed", "3"]
        let (reference, referencePort) = try startServer(session)
        defer { reference.end() }
        let referenceWorkers = try (1...2).map { try startWorker(port: referencePort, name: "ref-\($0)", ["--once"]) }
        defer { referenceWorkers.forEach { $0.end() } }
        let unsharded = try summary(of: reference)

        let (server, port) = try startServer(session + ["--shards", "3"])
        defer { server.end() }
        let shards = try (1...3).map { try Self.startShard(port: port, name: "shard-\($0)", ["--once"]) }
        defer { shards.forEach { $0.end() } }
        let workers = try (1...2).map { try startWorker(port: port, name: "w\($0)", ["--once"]) }
        defer { workers.forEach { $0.end() } }
        let fields = try summary(of: server)
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("applied_twice") == 0)
        #expect(abs(fields.double("test_accuracy") - unsharded.double("test_accuracy")) <= 0.04, "sharded \(fields), unsharded \(unsharded)")
        let log = server.output.joined(separator: "\n")
        #expect(log.contains("all 3 shard(s) hold their ranges"))
    }

    /// A shard killed mid-session (async, the default exchange): the session goes back to its last
    /// snapshot, a spare takes the range, the workers reconnect, and every unit is still applied exactly
    /// once.
    @Test func aKilledShardIsReplacedByASpareAndNothingIsLostOrAppliedTwice() throws {
        let session = compressedSession + ["--workers", "2", "--epochs", "4", "--shards", "2", "--snapshot-every", "0.5"]
        let (server, port) = try startServer(session)
        defer { server.end() }
        let first = try Self.startShard(port: port, name: "shard-a")
        defer { first.end() }
        _ = try server.waitForLine(containing: "shard shard-a holds range 0")
        let second = try Self.startShard(port: port, name: "shard-b")
        defer { second.end() }
        _ = try server.waitForLine(containing: "shard shard-b holds range 1")
        let spare = try Self.startShard(port: port, name: "shard-spare")
        defer { spare.end() }
        _ = try server.waitForLine(containing: "shard-spare waits as a spare")
        let workers = try (1...2).map { try startWorker(port: port, name: "w\($0)") }
        defer { workers.forEach { $0.end() } }
        // Past the first epoch, and a snapshot or two later, shard-b dies without a word.
        _ = try server.waitForLine(containing: "epoch 1/4", timeout: .seconds(120))
        second.send(SIGKILL)
        _ = try server.waitForLine(containing: "going back to the snapshot at version", timeout: .seconds(30))
        _ = try server.waitForLine(containing: "shard shard-spare holds range 1", timeout: .seconds(30))
        let fields = try summary(of: server)
        #expect(fields.int("rollbacks") == 1)
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("applied_twice") == 0)
        // The unsharded session reaches 80 to 84%; a rollback costs at most its snapshot interval.
        #expect(fields.double("test_accuracy") > 0.7, "\(fields)")
    }

    /// A server killed mid-session resumes with its shards, as it does without them: the shards (and
    /// workers) reconnect, the ranges are assigned from the checkpoint, and the session trains only the
    /// units not done, to the accuracy of the uninterrupted sync session.
    @Test func aKilledServerResumesWithItsShards() throws {
        let session = smallSession + ["--epochs", "3", "--mode", "sync", "--workers", "2", "--seed", "7", "--shards", "2"]
        let (reference, referencePort) = try startServer(session)
        defer { reference.end() }
        let referenceShards = try (1...2).map { try Self.startShard(port: referencePort, name: "ref-shard-\($0)", ["--once"]) }
        defer { referenceShards.forEach { $0.end() } }
        let referenceWorkers = try (1...2).map { try startWorker(port: referencePort, name: "ref-\($0)", ["--once"]) }
        defer { referenceWorkers.forEach { $0.end() } }
        let uninterrupted = try summary(of: reference)

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("downpour-shards-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("sharded.ckpt").path
        let (first, port) = try startServer(session + ["--checkpoint", path, "--checkpoint-every", "15"])
        defer { first.end() }
        // Continuous shards and workers: they lose the server and join the resumed session.
        let shards = try (1...2).map { try Self.startShard(port: port, name: "shard-\($0)") }
        defer { shards.forEach { $0.end() } }
        let workers = try (1...2).map { try startWorker(port: port, name: "w\($0)") }
        defer { workers.forEach { $0.end() } }
        let line = try first.waitForLine(timeout: .seconds(120), description: "a checkpoint past a third of the units") { line in
            guard line.hasPrefix("checkpoint written"), let fraction = ResumeTests.unitsFraction(line) else { return false }
            return fraction.done * 3 >= fraction.total
        }
        first.send(SIGKILL)
        #expect(try first.waitForExit(timeout: .seconds(30)) != 0)
        let atKill = try #require(ResumeTests.unitsFraction(line))

        // Without --shards: a sharded checkpoint resumes as many shards as it names.
        let resumed = try RunningProcess("ps-server", ["--port", String(port), "--resume", path])
        defer { resumed.end() }
        let fields = try summary(of: resumed)
        let resumedLine = try #require(resumed.output.first { $0.hasPrefix("resumed session") })
        #expect(resumedLine.contains("/\(atKill.total) units done"))
        #expect(resumed.output.contains { $0.hasPrefix("the checkpoint's model was joined from 2 shard(s)") && $0.hasSuffix("now 2 shard(s) hold it") })
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("applied_twice") == 0)
        let difference = abs(fields.double("test_accuracy") - uninterrupted.double("test_accuracy"))
        #expect(difference <= 0.005, "resumed \(fields), uninterrupted \(uninterrupted)")
    }

    /// A shard that gives back another range than it was assigned (here: one parameter short) is
    /// refused with the reason, no worker is sent to it, and the session starts once a real shard
    /// holds the range.
    @Test func aShardHoldingTheWrongRangeIsRefusedBeforeTheSessionStarts() throws {
        let (server, port) = try startServer(smallSession + ["--workers", "1", "--shards", "1"])
        defer { server.end() }
        let worker = try startWorker(port: port, name: "w1", ["--once"])
        defer { worker.end() }
        let impostor = try RawPeer(port: port)
        try impostor.send(.shardHello(ShardHello(protocolVersion: ProtocolVersion.shard, shardName: "short", host: "127.0.0.1", port: 4000)))
        guard case .shardAssignment(let assignment)? = try impostor.receive(until: { if case .shardAssignment = $0 { true } else { $0.isError } })
        else { Issue.record("no assignment"); return }
        guard case .shardStateRequest(let request)? = try impostor.receive(until: { if case .shardStateRequest = $0 { true } else { $0.isError } })
        else { Issue.record("no state request"); return }
        #expect(request.modelState)
        var held = try ModelTrainingState(wireBytes: assignment.modelState)
        held.parameters.removeLast()
        held.optimizer.buffers = held.optimizer.buffers.mapValues { Array($0.dropLast()) }
        try impostor.send(.shardState(ShardState(requestID: request.requestID, version: assignment.version, modelState: held.wireBytes())))
        let refusal = try #require(try impostor.receive(until: { $0.isError })?.errorReport)
        #expect(refusal.code == .wrongShard && refusal.fatal)
        #expect(refusal.message.contains("it holds \(assignment.count - 1) parameters; range 0"), "\(refusal.message)")
        #expect(!server.output.contains { $0.contains("training started") })

        let shard = try Self.startShard(port: port, name: "honest", ["--once"])
        defer { shard.end() }
        let fields = try summary(of: server)
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(server.output.contains { $0.contains("refused") && $0.contains("short") })
    }

    /// TLS and a token on every connection of a sharded session: server, shards and workers. Each
    /// shard proves its token to the server and checks the server's proof, serves its workers over TLS
    /// with its own certificate, and admits only workers with the server's ticket.
    @Test func aShardedSessionRunsOverTLSWithATokenOnEveryConnection() throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let token = ["--token", "a-token-of-at-least-thirty-two-bytes!"]
        let (server, port) = try startServer(smallSession + ["--workers", "2", "--shards", "2", "--tls-cert", certificates.serverCertificate,
                                                             "--tls-key", certificates.serverKey] + token)
        defer { server.end() }
        let shards = try (1...2).map {
            try RunningProcess("ps-shard", ["localhost", String(port), "0.2", "--name", "tls-shard-\($0)", "--once",
                                            "--tls-ca", certificates.caCertificate, "--tls-cert", certificates.serverCertificate,
                                            "--tls-key", certificates.serverKey, "--advertise", "localhost"] + token)
        }
        defer { shards.forEach { $0.end() } }
        let workers = try (1...2).map {
            try RunningProcess("ps-worker", ["localhost", String(port), "0.2", "--name", "tls-\($0)", "--once", "--models", "mlp",
                                             "--tls-ca", certificates.caCertificate] + token)
        }
        defer { workers.forEach { $0.end() } }
        let fields = try summary(of: server)
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("shards") == 2 && fields.int("applied_twice") == 0)
        for process in shards + workers { #expect(try process.waitForExit(timeout: .seconds(60)) == 0) }
    }

    /// A worker that claims its slices are staged without sending them: the server waits for the
    /// shards' word, which never comes, so no `ShardApply` names a slice a shard lacks; the unit's
    /// lease expires, another worker trains it, and the session never goes back to a snapshot.
    @Test func aStagedPushWhoseSlicesNoShardHoldsIsNeverApplied() throws {
        let (server, port) = try startServer(smallSession + ["--workers", "2", "--shards", "2", "--lease-floor", "1"])
        defer { server.end() }
        let shards = try (1...2).map { try Self.startShard(port: port, name: "shard-\($0)", ["--once"]) }
        defer { shards.forEach { $0.end() } }
        _ = try server.waitForLine(containing: "all 2 shard(s) hold their ranges")
        let liar = try RawPeer(port: port)
        try liar.send(.hello(Hello(protocolVersion: 1, workerName: "liar", capabilities: Capabilities(
            threads: 1, architectures: ["mlp"], maxUnitsAhead: 1, serverHeartbeats: false, encodings: ["shards"]))))
        let worker = try startWorker(port: port, name: "honest", ["--once"])
        defer { worker.end() }
        guard case .workUnit(let unit)? = try liar.receive(until: { if case .workUnit = $0 { true } else { $0.isError } }) else {
            Issue.record("the liar got no unit")
            return
        }
        try liar.send(.push(Push(unitID: unit.unitID, baseVersion: 0, kind: .gradient, loss: 1,
                                 sampleCount: UInt32(unit.indices.count), staged: true)))
        // Heartbeats keep it in the session while its lease runs out.
        for sequence in 1...3 {
            try liar.send(.heartbeat(Heartbeat(seq: UInt64(sequence), unixNanos: 0)))
            _ = liar.isReadable(within: .milliseconds(500))
        }
        let fields = try summary(of: server)
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("applied_twice") == 0)
        #expect(fields.int("rollbacks") == 0, "\(fields)")
        #expect(!server.output.contains { $0.contains("going back to the snapshot") })
    }

    /// A worker that does not offer shards is told why; a shard at a server without --shards too; the
    /// sharded session goes on.
    @Test func peersThatCannotTakePartAreRefusedWithTheReason() throws {
        let (plain, plainPort) = try startServer(smallSession + ["--workers", "1"])
        defer { plain.end() }
        let lost = try RawPeer(port: plainPort)
        try lost.send(.shardHello(ShardHello(protocolVersion: ProtocolVersion.shard, shardName: "lost", host: "", port: 4000)))
        let notSharded = try #require(try lost.receive(until: { $0.isError })?.errorReport)
        #expect(notSharded.code == .unavailable && notSharded.fatal)
        #expect(notSharded.message.contains("not started with --shards"), "\(notSharded.message)")
        plain.end()

        let (server, port) = try startServer(smallSession + ["--workers", "1", "--shards", "1"])
        defer { server.end() }
        let shard = try Self.startShard(port: port, name: "shard-1", ["--once"])
        defer { shard.end() }
        _ = try server.waitForLine(containing: "all 1 shard(s) hold their ranges")
        let old = try RawPeer(port: port)
        try old.send(.hello(Hello(protocolVersion: 1, workerName: "fp32-only",
                                  capabilities: Capabilities(threads: 1, architectures: ["mlp"], maxUnitsAhead: 1))))
        let refusal = try #require(try old.receive(until: { $0.isError })?.errorReport)
        #expect(refusal.code == .unavailable && refusal.fatal)
        #expect(refusal.message.contains("must offer \"shards\""), "\(refusal.message)")
        // A shard of the version before the outer step's gain would train its range at another rate.
        let outdated = try RawPeer(port: port)
        try outdated.send(.shardHello(ShardHello(protocolVersion: 1, shardName: "outdated", host: "", port: 4000)))
        let versionRefusal = try #require(try outdated.receive(until: { $0.isError })?.errorReport)
        #expect(versionRefusal.code == .protocolVersion && versionRefusal.fatal)
        #expect(versionRefusal.message.contains("shard protocol version \(ProtocolVersion.shard)")
                && versionRefusal.message.contains("run matching versions of ps-server and ps-shard"), "\(versionRefusal.message)")
        let worker = try startWorker(port: port, name: "w1", ["--once"])
        defer { worker.end() }
        let fields = try summary(of: server)
        #expect(fields.int("units") == fields.int("units_expected"))
    }
}
