@testable import Reactor
import Testing

/// What each end of a refused connection reported.
private struct Refusal: Sendable {
    let server: ReactorError?
    let client: ReactorError?
}

@Suite("TLS refusals: one clear line on each side, and the listener serves on", .timeLimit(.minutes(2)))
struct TLSRefusalTests {
    let pki = TestPKI.shared

    /// Connects a client (`clientTLS`, or plaintext) to a listener (`serverTLS`, or plaintext) that
    /// refuses it, waits for both ends to close, then checks that a good client (`goodClient`, or one
    /// trusting the test CA, or plaintext; `goodServerName`) still gets an echo from the same listener.
    private func refusal(server serverTLS: TLSContext?, client clientTLS: TLSContext?, serverName: String? = nil,
                         hook: (@Sendable (FrameConnection, ReactorError) -> Void)? = nil,
                         clientFrames: (@Sendable ([UInt8]) -> Void)? = nil,
                         goodClient: TLSContext? = nil, goodServerName: String? = nil,
                         probe: Bool = true) async throws -> Refusal {
        try await withLoop { loop in
            let serverClosed = Promise<ReactorError?>()
            let connections = Counter()
            let port = try await loop.submit {
                try FrameListener(loop: loop, host: "127.0.0.1", port: 0, tls: serverTLS) { connection in
                    let first = connections.increment() == 1
                    connection.onFrame = { [unowned connection] in connection.send(frame: $0) }
                    if let hook { connection.onFrameRefused = { [unowned connection] in hook(connection, $0) } }
                    connection.onClose = { error in if first { serverClosed.succeed(error) } }
                }.localPort
            }
            let clientClosed = Promise<ReactorError?>()
            _ = try await connectClient(on: loop, port: port, tls: clientTLS, serverName: serverName) { connection in
                connection.onFrame = { clientFrames?(Array($0)) }
                connection.onClose = { clientClosed.succeed($0) }
                connection.send(frame: Array("hello".utf8))
            }
            let result = Refusal(server: try await serverClosed.get(), client: try await clientClosed.get())
            guard probe else { return result }
            // The listener carries on.
            let echoed = Promise<[UInt8]>()
            let good = try goodClient ?? (serverTLS == nil ? nil : pki.clientContext())
            _ = try await connectClient(on: loop, port: port, tls: good, serverName: goodServerName) { connection in
                connection.onFrame = { echoed.succeed(Array($0)) }
                connection.send(frame: [42])
            }
            #expect(try await echoed.get() == [42])
            return result
        }
    }

    @Test("a plaintext client at a TLS listener")
    func plaintextClientAtTLSServer() async throws {
        let refused = try await refusal(server: try pki.serverContext(), client: nil)
        #expect(refused.server?.kind == .tls("plaintext peer"))
        #expect(refused.server?.message.hasPrefix("the peer spoke plaintext to a TLS listener") == true)
        #expect(refused.client?.kind == .tls("peer speaks TLS"))
        #expect(refused.client?.message == "the server is speaking TLS, and this connection is plaintext")
    }

    @Test("a plaintext client at a TLS listener whose onFrameRefused answers gets the answer in plaintext")
    func plaintextClientGetsPlaintextAnswer() async throws {
        let answer = Promise<String>()
        let refused = try await refusal(server: try pki.serverContext(), client: nil, hook: { connection, error in
            connection.send(frame: Array("refused: \(error.message)".utf8))
        }, clientFrames: { answer.succeed(String(decoding: $0, as: UTF8.self)) })
        #expect(refused.server?.kind == .tls("plaintext peer"))
        #expect(try await answer.get().hasPrefix("refused: the peer spoke plaintext to a TLS listener"))
        #expect(refused.client == nil)
    }

    @Test("a TLS client at a plaintext listener")
    func tlsClientAtPlaintextServer() async throws {
        let refused = try await refusal(server: nil, client: try pki.clientContext())
        #expect(refused.server?.kind == .tls("peer speaks TLS"))
        #expect(refused.server?.message == "the peer spoke TLS to a plaintext listener")
        #expect(refused.client?.kind == .tls("not TLS"))
        #expect(refused.client?.message.hasPrefix("the server is not speaking TLS") == true)
    }

    @Test("a TLS client at a plaintext listener whose onFrameRefused answers (in plaintext)")
    func tlsClientAtPlaintextServerWithAnswer() async throws {
        let refused = try await refusal(server: nil, client: try pki.clientContext(), hook: { connection, error in
            connection.send(frame: Array("refused: \(error.message)".utf8))
        })
        #expect(refused.server?.kind == .tls("peer speaks TLS"))
        #expect(refused.client?.kind == .tls("not TLS"))
        #expect(refused.client?.message.hasPrefix("the server is not speaking TLS: it answered the handshake with bytes that are not a TLS record") == true)
    }

    @Test("a server certificate from a CA the client does not trust")
    func unknownCA() async throws {
        let refused = try await refusal(server: try pki.serverContext(), client: try pki.clientContext(trusting: pki.otherCAPath))
        #expect(refused.client?.kind == .tls("certificate verify failed"))
        #expect(refused.client?.message.hasPrefix("the server's certificate failed verification: unable to get local issuer certificate") == true)
        #expect(refused.server?.message == "the client rejected this server's certificate (TLS alert: unknown CA)")
    }

    @Test("a server certificate for another name (checked against the host's address, and against a server name)",
          arguments: [nil, "localhost"] as [String?])
    func wrongName(serverName: String?) async throws {
        let refused = try await refusal(server: try pki.serverContext(pki.wrongNameServer), client: try pki.clientContext(),
                                        serverName: serverName, goodServerName: "elsewhere.example")
        #expect(refused.client?.kind == .tls("certificate verify failed"))
        let mismatch = serverName == nil ? "IP address mismatch" : "hostname mismatch"
        let name = serverName ?? "127.0.0.1"
        #expect(refused.client?.message.lowercased()
            == "the server's certificate failed verification: \(mismatch) (it is not valid for \"\(name)\")".lowercased())
        #expect(refused.server?.message.hasPrefix("the client rejected this server's certificate") == true)
    }

    @Test("an expired server certificate")
    func expired() async throws {
        // No client can get past this listener's certificate, so there is nobody to probe it with.
        let refused = try await refusal(server: try pki.serverContext(pki.expiredServer), client: try pki.clientContext(),
                                        probe: false)
        #expect(refused.client?.message == "the server's certificate failed verification: certificate has expired")
        #expect(refused.server?.message == "the client rejected this server's certificate (TLS alert: certificate expired)")
    }

    @Test("mutual TLS: a client without a certificate")
    func mutualTLSWithoutCertificate() async throws {
        let refused = try await refusal(server: try pki.serverContext(clientCA: pki.caPath), client: try pki.clientContext(),
                                        goodClient: try pki.clientContext(identity: pki.client))
        #expect(refused.server?.message == "the client sent no certificate, and this server requires one (mutual TLS)")
        #expect(refused.client?.kind == .tls("tlsv13 alert certificate required"))
        #expect(refused.client?.message.hasPrefix("the server requires a client certificate (mutual TLS)") == true)
    }

    @Test("mutual TLS: a client certificate from a CA the server does not trust")
    func mutualTLSWithUntrustedCertificate() async throws {
        let refused = try await refusal(server: try pki.serverContext(clientCA: pki.caPath),
                                        client: try pki.clientContext(identity: pki.otherCAClient),
                                        goodClient: try pki.clientContext(identity: pki.client))
        #expect(refused.server?.message.hasPrefix("the client's certificate failed verification") == true)
        #expect(refused.client?.message == "the server rejected this client's certificate (TLS alert: unknown CA)")
    }

    @Test("a peer that never completes the handshake is closed at the handshake timeout")
    func handshakeTimeout() async throws {
        let serverTLS = try pki.serverContext(handshakeTimeout: .milliseconds(200))
        try await withLoop { loop in
            let serverClosed = Promise<ReactorError?>()
            let port = try await loop.submit {
                try FrameListener(loop: loop, host: "127.0.0.1", port: 0, tls: serverTLS) { connection in
                    connection.onClose = { serverClosed.succeed($0) }
                }.localPort
            }
            let silent = LoopBox<TCPConnection?>(nil)
            loop.execute {
                TCPConnection.connect(loop: loop, host: "127.0.0.1", port: port) { result in
                    silent.value = try? result.get()
                }
            }
            let error = try await serverClosed.get()
            #expect(error?.kind == .tls("handshake timeout"))
            #expect(error?.message.hasPrefix("the TLS handshake did not complete within") == true)
            loop.execute { silent.value?.closeNow() }
        }
    }
}
