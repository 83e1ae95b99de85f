import Foundation
import Testing

/// TLS 1.3 between real ps-server and ps-worker processes, with certificates made at run time: a
/// session with a token bound to each TLS connection, mutual TLS, and every refusal the issue names,
/// each one clear line on both sides while the server trains on with the others.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct TLSTests {
    /// A worker that must be refused: it exits 1 having said `workerSays`.
    private func expectRefused(_ arguments: [String], port: Int, name: String, workerSays: String) throws {
        let worker = try RunningProcess("ps-worker", ["localhost", String(port), "0.2", "--name", name, "--once", "--models", "mlp"] + arguments)
        defer { worker.end() }
        #expect(try worker.waitForExit(timeout: .seconds(60)) == 1, "\(name): \(worker.output.suffix(5))")
        #expect(worker.output.contains { $0.contains(workerSays) }, "\(name) should say \"\(workerSays)\": \(worker.output.suffix(5))")
    }

    @Test func aSessionOverTLSWithATokenBoundToEachConnectionTrains() throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let token = ["--token", "a-token-of-at-least-thirty-two-bytes!"]
        let (server, port) = try startServer(smallSession + ["--workers", "2", "--tls-cert", certificates.serverCertificate,
                                                             "--tls-key", certificates.serverKey] + token)
        defer { server.end() }
        let workers = try (1...2).map {
            try RunningProcess("ps-worker", ["localhost", String(port), "0.2", "--name", "tls-\($0)", "--once", "--models", "mlp",
                                             "--tls-ca", certificates.caCertificate] + token)
        }
        defer { workers.forEach { $0.end() } }
        let fields = try summary(of: server)
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("joins") == 2)
        #expect(server.output.contains { $0.hasPrefix("TLS 1.3 on every connection: certificate") })
        #expect(server.output.contains { $0.contains("bound to each TLS connection") })
        for worker in workers {
            #expect(try worker.waitForExit(timeout: .seconds(60)) == 0)
            #expect(worker.output.contains { $0.hasPrefix("TLS 1.3 to the server, checking its certificate against localhost") })
        }
    }

    @Test func wrongPeersAreRefusedWithOneClearLineOnEachSideAndTheSessionTrainsOn() throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        // One slowed-down worker keeps the session going while the others are refused.
        let (server, port) = try startServer(smallSession + ["--workers", "1", "--tls-cert", certificates.serverCertificate,
                                                             "--tls-key", certificates.serverKey])
        defer { server.end() }
        let steady = try RunningProcess("ps-worker", ["localhost", String(port), "0.2", "--name", "steady", "--once", "--models", "mlp",
                                                      "--tls-ca", certificates.caCertificate, "--inject", "delay=40ms"])
        defer { steady.end() }
        try server.waitForLine(containing: "training started", timeout: .seconds(120))

        try expectRefused([], port: port, name: "plaintext", workerSays: "error: the server refused this worker: this server speaks TLS 1.3 only: connect with TLS (ps-worker --tls-ca CA, or --tls)")
        try server.waitForLine(containing: "the peer spoke plaintext to a TLS listener", timeout: .seconds(10))
        try expectRefused(["--tls-ca", certificates.otherCA], port: port, name: "other-ca",
                          workerSays: "the server's certificate failed verification: unable to get local issuer certificate")
        try server.waitForLine(containing: "the client rejected this server's certificate (TLS alert: unknown CA)", timeout: .seconds(10))
        try expectRefused(["--tls-ca", certificates.caCertificate, "--tls-server-name", "elsewhere.example"], port: port,
                          name: "wrong-name", workerSays: "hostname mismatch")
        try server.waitForLines(containing: "the client rejected this server's certificate", count: 2, timeout: .seconds(10))
        #expect(!server.output.contains { $0.hasPrefix("mode=") }, "the session ended before the refusals were over; it proved nothing")

        let fields = try summary(of: server)
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("joins") == 1, "a refused peer must never join")
        #expect(try steady.waitForExit(timeout: .seconds(60)) == 0)
    }

    @Test func expiredCertificatesAndPlaintextServersAreRefusedByTheWorker() throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let (expired, expiredPort) = try startServer(smallSession + ["--tls-cert", certificates.expiredCertificate,
                                                                     "--tls-key", certificates.expiredKey])
        defer { expired.end() }
        try expectRefused(["--tls-ca", certificates.caCertificate], port: expiredPort, name: "to-expired",
                          workerSays: "certificate has expired")
        try expired.waitForLine(containing: "(TLS alert: certificate expired)", timeout: .seconds(10))

        let (plaintext, plaintextPort) = try startServer(smallSession)
        defer { plaintext.end() }
        try expectRefused(["--tls-ca", certificates.caCertificate], port: plaintextPort, name: "to-plaintext",
                          workerSays: "the server is not speaking TLS")
        try plaintext.waitForLine(containing: "the peer spoke TLS to a plaintext listener", timeout: .seconds(10))
    }

    @Test func mutualTLSAdmitsOnlyWorkersWithACertificateFromTheClientCA() throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let (server, port) = try startServer(smallSession + ["--workers", "1", "--tls-cert", certificates.serverCertificate,
                                                             "--tls-key", certificates.serverKey, "--tls-client-ca", certificates.caCertificate])
        defer { server.end() }
        try expectRefused(["--tls-ca", certificates.caCertificate], port: port, name: "no-certificate",
                          workerSays: "the server requires a client certificate (mutual TLS)")
        try server.waitForLine(containing: "the client sent no certificate, and this server requires one (mutual TLS)", timeout: .seconds(10))
        let worker = try RunningProcess("ps-worker", [
            "localhost", String(port), "0.2", "--name", "with-certificate", "--once", "--models", "mlp",
            "--tls-ca", certificates.caCertificate, "--tls-cert", certificates.workerCertificate, "--tls-key", certificates.workerKey,
        ])
        defer { worker.end() }
        let fields = try summary(of: server)
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(try worker.waitForExit(timeout: .seconds(60)) == 0)
    }
}

/// Examples/PythonWorker: a worker written from the protocol README alone, with Python's `ssl` and
/// Google's protobuf runtime, trains over TLS beside ps-worker.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct PythonWorkerTests {
    /// The command that starts a Python with google.protobuf: Debian's interpreter first (its
    /// python3-protobuf), else the first `python3` on PATH, as the codec's differential test looks.
    static func python() throws -> [String] {
        for command in [["/usr/bin/python3"], ["/usr/bin/env", "python3"]] where FileManager.default.isExecutableFile(atPath: command[0]) {
            let probe = Process()
            probe.executableURL = URL(fileURLWithPath: command[0])
            probe.arguments = Array(command.dropFirst()) + ["-c", "import google.protobuf"]
            probe.standardError = FileHandle.nullDevice
            try probe.run()
            probe.waitUntilExit()
            if probe.terminationStatus == 0 { return command }
        }
        throw ProcessTestError.exited("python3", waitingFor: "a python3 with google.protobuf (Debian's python3-protobuf)", output: [])
    }

    @Test func aPythonWorkerWithTheStandardSSLModuleTrainsOverTLS() throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let (server, port) = try startServer([
            "--train-samples", "2000", "--test-samples", "1000", "--hidden", "16", "--batch-size", "32", "--epochs", "2",
            "--uncompressed", "--optimizer", "momentum", "--lr", "0.1", "--momentum", "0.5", "--workers", "2",
            "--heartbeat-timeout", "20", "--tls-cert", certificates.serverCertificate, "--tls-key", certificates.serverKey,
        ])
        defer { server.end() }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Examples/PythonWorker/worker.py").standardized.path
        let interpreter = try Self.python()
        let python = try RunningProcess(interpreter[0], Array(interpreter.dropFirst()) + [
            script, "localhost", String(port), "--tls-ca", certificates.caCertificate, "--name", "python-1",
        ])
        defer { python.end() }
        // Slowed down so that the pure-Python worker gets a fair share of the units.
        let swift = try RunningProcess("ps-worker", ["localhost", String(port), "0.2", "--name", "swift-1", "--once", "--models", "mlp",
                                                     "--tls-ca", certificates.caCertificate, "--inject", "delay=60ms"])
        defer { swift.end() }
        let fields = try summary(of: server)
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("joins") == 2)
        #expect(try python.waitForExit(timeout: .seconds(60)) == 0, "\(python.output.suffix(10))")
        #expect(python.output.contains { $0.hasPrefix("python-1: TLSv1.3 with localhost") })
        let over = try #require(python.output.first { $0.contains("session over") }, "\(python.output.suffix(10))")
        let applied = Int(over.split(separator: ", ").last?.split(separator: " ").first ?? "") ?? 0
        #expect(applied >= 5, "the Python worker's pushes applied: \(over)")
        // From chance (10%) to well above it: the Python worker's gradients are right.
        #expect(fields.double("test_accuracy") >= 0.4)
    }
}
