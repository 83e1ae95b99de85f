import Foundation
import Messages
import Testing

/// Token authentication with real processes on 127.0.0.1: workers that cannot prove they hold the
/// token are refused in plain words while the others train, and a worker with a token trusts only a
/// server that proves it holds it too.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct AuthenticationTests {
    /// A token file readable by its owner only, removed by `deinit`.
    final class TokenFile {
        let path: String
        let token: String

        init(_ token: String = UUID().uuidString + UUID().uuidString) throws {
            self.token = token
            path = FileManager.default.temporaryDirectory.appendingPathComponent("downpour-token-\(UUID().uuidString)").path
            try Data((token + "\n").utf8).write(to: URL(fileURLWithPath: path))
            chmod(path, 0o600)
        }

        deinit {
            unlink(path)
        }
    }

    private let hello = Envelope.Body.hello(Hello(
        protocolVersion: 1, workerName: "raw", capabilities: Capabilities(threads: 1, architectures: ["mlp"], maxUnitsAhead: 4)))

    @Test func workersWithoutTheTokenAreRefusedWhileTheOthersTrain() throws {
        let token = try TokenFile()
        let wrong = try TokenFile()
        let (server, port) = try startServer(smallSession + ["--workers", "2", "--epochs", "3", "--token-file", token.path])
        defer { server.end() }
        try server.waitForLine(containing: "authentication: workers must prove they hold the token from --token-file")

        // One good worker joins, started by ps-fleet, from whose environment it inherits the token;
        // the session waits for a second. Slowed, so the session outlasts the raw peers below.
        let fleet = try RunningProcess(
            "ps-fleet", ["127.0.0.1", String(port), "--workers", "1", "--seed", "1", "--retry", "0.2", "--inject", "delay=20ms",
                         "--server-pid", String(server.pid), "--duration", "240"],
            environment: ["DOWNPOUR_TOKEN": token.token])
        defer { fleet.endGracefully() }
        try server.waitForLine(containing: "(fleet-1) joined")

        // A wrong token and no token: refused, told why, and they exit rather than retry.
        let impostor = try startWorker(port: port, name: "wrong", ["--token-file", wrong.path])
        let tokenless = try startWorker(port: port, name: "tokenless")
        defer { impostor.end(); tokenless.end() }
        #expect(try impostor.waitForExit(timeout: .seconds(120)) == 1)
        #expect(try tokenless.waitForExit(timeout: .seconds(120)) == 1)
        let impostorLog = impostor.output.joined(separator: "\n")
        #expect(impostorLog.contains("server: authentication failed: wrong token"), "\(impostorLog)")
        #expect(impostorLog.contains("the server refused this worker's token"))
        #expect(!impostorLog.contains("joined session"))
        let tokenlessLog = tokenless.output.joined(separator: "\n")
        #expect(tokenlessLog.contains("the server requires a token; pass --token-file or set DOWNPOUR_TOKEN"), "\(tokenlessLog)")
        #expect(!tokenlessLog.contains("joined session"))

        // The second good worker (token from a file) starts the training.
        let second = try startWorker(port: port, name: "good-file", ["--token-file", token.path, "--once", "--inject", "delay=20ms"])
        defer { second.end() }
        try server.waitForLine(containing: "training started")

        // Mid-session, raw peers skip the challenge and send work messages instead: refused, and the
        // Challenge is all they ever get (no weights, no unit).
        for body: Envelope.Body in [
            .push(Push(unitID: 1, baseVersion: 0, kind: .gradient, loss: 1, sampleCount: 1, values: [0])),
            .pull(Pull(knownVersion: 0)),
        ] {
            let raw = try RawPeer(port: port, timeout: .seconds(30))
            try raw.send(hello)
            guard case .challenge(let challenge)? = try raw.receive()?.body else {
                Issue.record("no Challenge after Hello")
                continue
            }
            #expect(challenge.serverNonce.count == 32)
            try raw.send(body)
            let refusal = try #require(try raw.receive()?.body?.errorReport, "the answer to a skipped challenge is not an ErrorReport")
            #expect(refusal.code == .unauthenticated)
            #expect(refusal.fatal)
            #expect(try raw.receive() == nil, "the connection stays open after the refusal")
        }

        let fields = try summary(of: server)
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("samples") == 3 * 3000)
        #expect(fields.int("joins") == 2)
        // Only the losing copies of backup units may be refused: nothing of the refused peers got in.
        #expect(fields.int("rejected") == fields.int("duplicates"))
        #expect(fields.int("applied_twice") == 0)
        #expect(try second.waitForExit(timeout: .seconds(120)) == 0)
        #expect(try fleet.waitForExit(timeout: .seconds(120)) == 0)
        let log = server.output.joined(separator: "\n")
        #expect(log.contains(#"authentication failed (wrong token); it called itself "wrong""#), "\(log)")
        #expect(log.contains(#"authentication failed (the worker gave up: this worker has no token); it called itself "tokenless""#))
        #expect(log.contains(#"authentication failed (expected ChallengeResponse, got Push); it called itself "raw""#))
        #expect(log.contains(#"authentication failed (expected ChallengeResponse, got Pull); it called itself "raw""#))
        #expect(server.output.contains { $0.hasPrefix("refused 127.0.0.1:") && $0.contains("authentication failed") })
        #expect(!log.contains(token.token) && !log.contains(wrong.token), "a token was logged")
    }

    @Test func aWorkerWithATokenRefusesAServerThatCannotProveItHoldsIt() throws {
        let token = try TokenFile()
        // No token on the server: it welcomes at once, without a challenge. Two workers are awaited so
        // that training never starts.
        let (server, port) = try startServer(smallSession + ["--workers", "2"])
        defer { server.end() }
        let worker = try startWorker(port: port, name: "careful", ["--token-file", token.path])
        defer { worker.end() }
        #expect(try worker.waitForExit(timeout: .seconds(120)) == 1)
        let log = worker.output.joined(separator: "\n")
        #expect(log.contains("the server sent Welcome without a challenge, so it cannot prove it holds this worker's token"), "\(log)")
        #expect(!log.contains("joined session"))
        try server.waitForLine(containing: "(careful) left")
    }

    @Test func aWrongOrLateChallengeResponseIsRefused() throws {
        let token = try TokenFile()
        let (server, port) = try startServer(smallSession + ["--workers", "2", "--token-file", token.path, "--handshake-timeout", "2"])
        defer { server.end() }
        for (nonce, mac) in [([UInt8](repeating: 7, count: 32), [UInt8](repeating: 0, count: 32)), ([1, 2, 3], [])] {
            let raw = try RawPeer(port: port, timeout: .seconds(30))
            try raw.send(hello)
            guard case .challenge? = try raw.receive()?.body else {
                Issue.record("no Challenge after Hello")
                continue
            }
            try raw.send(.challengeResponse(ChallengeResponse(clientNonce: nonce, mac: mac)))
            let refusal = try #require(try raw.receive()?.body?.errorReport)
            #expect(refusal.code == .unauthenticated && refusal.fatal)
            #expect(try raw.receive() == nil)
        }
        try server.waitForLine(containing: "authentication failed (wrong token)")
        try server.waitForLine(containing: "authentication failed (client_nonce has 3 bytes, not 32)")

        // The handshake timeout covers the challenge: a peer that never answers is closed.
        let silent = try RawPeer(port: port, timeout: .seconds(30))
        try silent.send(hello)
        guard case .challenge? = try silent.receive()?.body else {
            Issue.record("no Challenge after Hello")
            return
        }
        #expect(try silent.receive() == nil)
        try server.waitForLine(containing: "no handshake within")
    }

    @Test func aNonLoopbackHostIsAllowedWithATokenOrInsecureOnly() throws {
        let token = try TokenFile()
        // Past validation, into start-up, which stops at the missing data before anything is bound.
        let withToken = try RunningProcess("ps-server", ["--host", "0.0.0.0", "--token-file", token.path, "--data", "/nonexistent"])
        #expect(try withToken.waitForExit(timeout: .seconds(30)) != 0)
        #expect(withToken.output.contains { $0.contains("authentication: workers must prove they hold the token") }, "\(withToken.output)")
        #expect(!withToken.output.contains { $0.contains("WARNING") })
        #expect(withToken.output.contains { $0.contains("/nonexistent") })

        let fromEnvironment = try RunningProcess(
            "ps-server", ["--host", "0.0.0.0", "--data", "/nonexistent"], environment: ["DOWNPOUR_TOKEN": token.token])
        #expect(try fromEnvironment.waitForExit(timeout: .seconds(30)) != 0)
        #expect(fromEnvironment.output.contains { $0.contains("the token from DOWNPOUR_TOKEN") }, "\(fromEnvironment.output)")

        let insecure = try RunningProcess("ps-server", ["--host", "0.0.0.0", "--insecure", "--data", "/nonexistent"])
        #expect(try insecure.waitForExit(timeout: .seconds(30)) != 0)
        #expect(insecure.output.contains { $0.contains("WARNING: listening on 0.0.0.0 without authentication") })

        let refused = try RunningProcess("ps-server", ["--host", "0.0.0.0"])
        #expect(try refused.waitForExit(timeout: .seconds(30)) != 0)
        #expect(refused.output.contains { $0.contains("--host 0.0.0.0 is not a loopback address") })
    }

    @Test func aTokenFileOthersCanReadIsUsedWithAWarning() throws {
        let token = try TokenFile()
        chmod(token.path, 0o644)
        let server = try RunningProcess("ps-server", ["--token-file", token.path, "--data", "/nonexistent"])
        #expect(try server.waitForExit(timeout: .seconds(30)) != 0)
        #expect(server.output.contains { $0.contains("WARNING: --token-file \(token.path) is accessible by group or others (mode 644)") },
                "\(server.output)")
    }
}
