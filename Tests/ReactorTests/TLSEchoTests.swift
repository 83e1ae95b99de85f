@testable import Reactor
import Testing

@Suite("Frames over TLS 1.3 on loopback", .timeLimit(.minutes(2)))
struct TLSEchoTests {
    let pki = TestPKI.shared

    @Test("echo of one frame, sent before the handshake completes",
          arguments: [0, 1, 100, 16_379, 16_380, 16_381, 65_536, 1 << 20, 8 << 20])
    func echo(size: Int) async throws {
        let serverTLS = try pki.serverContext()
        let clientTLS = try pki.clientContext()
        try await withLoop { loop in
            let port = try await startEchoServer(on: loop, tls: serverTLS)
            let sent = payload(size, seed: size)
            let received = Promise<[UInt8]>()
            let encrypted = Promise<Bool>()
            _ = try await connectClient(on: loop, port: port, tls: clientTLS) { connection in
                connection.onFrame = { [unowned connection] in
                    encrypted.succeed(connection.isTLSEstablished)
                    received.succeed(Array($0))
                }
                connection.send(frame: sent)
            }
            let echoed = try await received.get()
            #expect(echoed.count == sent.count)
            #expect(echoed == sent)
            #expect(try await encrypted.get())
        }
    }

    @Test("a large frame filled in place by sendFrame(payloadSize:) comes back whole")
    func largeFilledFrame() async throws {
        let serverTLS = try pki.serverContext()
        let clientTLS = try pki.clientContext()
        try await withLoop { loop in
            let port = try await startEchoServer(on: loop, tls: serverTLS)
            let size = 3 << 20
            let received = Promise<[UInt8]>()
            _ = try await connectClient(on: loop, port: port, tls: clientTLS) { connection in
                connection.onFrame = { received.succeed(Array($0)) }
                // After the handshake, so the frame takes the scratch-buffer path, not the staging.
                connection.onTLSEstablished = { [unowned connection] in
                    connection.sendFrame(payloadSize: size) { buffer in
                        for index in 0..<size { buffer[index] = UInt8(truncatingIfNeeded: index &* 7) }
                    }
                }
            }
            let echoed = try await received.get()
            #expect(echoed.count == size)
            #expect(echoed.enumerated().allSatisfy { $0.element == UInt8(truncatingIfNeeded: $0.offset &* 7) })
        }
    }

    @Test("10,000 pipelined frames of mixed sizes come back in order")
    func pipelined() async throws {
        let serverTLS = try pki.serverContext()
        let clientTLS = try pki.clientContext()
        try await withLoop { loop in
            let port = try await startEchoServer(on: loop, tls: serverTLS)
            let count = 10_000
            /// Mostly small frames, every 97th one larger than a TLS record; the index, then its low byte.
            let sizeOf: @Sendable (Int) -> Int = { index in index % 97 == 0 ? 20_000 + index : 5 + index % 300 }
            let done = Promise<Bool>()
            _ = try await connectClient(on: loop, port: port, tls: clientTLS) { connection in
                let next = LoopBox(0)
                let intact = LoopBox(true)
                connection.onFrame = { payload in
                    let index = Int(payload.loadUnaligned(as: UInt32.self))
                    if index != next.value || payload.count != sizeOf(index)
                        || payload.last != UInt8(truncatingIfNeeded: index) { intact.value = false }
                    next.value += 1
                    if next.value == count { done.succeed(intact.value) }
                }
                for index in 0..<count {
                    let size = sizeOf(index)
                    if index % 2 == 0 {
                        connection.sendFrame(payloadSize: size) { buffer in
                            buffer.initializeMemory(as: UInt8.self, repeating: UInt8(truncatingIfNeeded: index))
                            buffer.storeBytes(of: UInt32(index), as: UInt32.self)
                        }
                    } else {
                        var bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: size)
                        bytes.withUnsafeMutableBytes { $0.storeBytes(of: UInt32(index), as: UInt32.self) }
                        connection.send(frame: bytes)
                    }
                }
            }
            #expect(try await done.get())
        }
    }

    @Test("the server's first frame, sent when its handshake completes, arrives first")
    func serverSpeaksFirst() async throws {
        let serverTLS = try pki.serverContext()
        let clientTLS = try pki.clientContext()
        try await withLoop { loop in
            let port = try await loop.submit {
                try FrameListener(loop: loop, host: "127.0.0.1", port: 0, tls: serverTLS) { connection in
                    connection.onTLSEstablished = { [unowned connection] in connection.send(frame: Array("welcome".utf8)) }
                    connection.onFrame = { [unowned connection] in connection.send(frame: $0) }
                }.localPort
            }
            let frames = Promise<[String]>()
            let suite = Promise<String?>()
            _ = try await connectClient(on: loop, port: port, tls: clientTLS) { connection in
                let seen = LoopBox<[String]>([])
                connection.onTLSEstablished = { [unowned connection] in suite.succeed(connection.tlsCipherSuite) }
                connection.onFrame = { payload in
                    seen.value.append(String(decoding: payload, as: UTF8.self))
                    if seen.value.count == 2 { frames.succeed(seen.value) }
                }
                connection.send(frame: Array("hello".utf8))
            }
            #expect(try await frames.get() == ["welcome", "hello"])
            #expect(try await suite.get() == "TLS_AES_128_GCM_SHA256")
        }
    }

    @Test("close_notify: a client closing after its frames closes the server cleanly, frames delivered")
    func closeNotifyFromClient() async throws {
        let serverTLS = try pki.serverContext()
        let clientTLS = try pki.clientContext()
        try await withLoop { loop in
            let serverClosed = Promise<(Int, ReactorError?)>()
            let port = try await loop.submit {
                try FrameListener(loop: loop, host: "127.0.0.1", port: 0, tls: serverTLS) { connection in
                    let received = LoopBox(0)
                    connection.onFrame = { _ in received.value += 1 }
                    connection.onClose = { serverClosed.succeed((received.value, $0)) }
                }.localPort
            }
            let clientClosed = Promise<ReactorError?>()
            _ = try await connectClient(on: loop, port: port, tls: clientTLS) { connection in
                connection.onClose = { clientClosed.succeed($0) }
                for index in 0..<50 { connection.send(frame: payload(index * 100)) }
                connection.close()  // during the handshake: waits for it, sends the frames, then close_notify
            }
            let (frames, serverError) = try await serverClosed.get()
            #expect(frames == 50)
            #expect(serverError == nil)
            #expect(try await clientClosed.get() == nil)
        }
    }

    @Test("a half-close (close_notify, then FIN) after frames: the server answers them all, then closes cleanly")
    func halfClose() async throws {
        let serverTLS = try pki.serverContext()
        let clientTLS = try pki.clientContext()
        try await withLoop { loop in
            let serverClosed = Promise<ReactorError?>()
            let port = try await startEchoServer(on: loop, tls: serverTLS) { serverClosed.succeed($0) }
            let echoes = Promise<Int>()
            let clientClosed = Promise<ReactorError?>()
            _ = try await connectClient(on: loop, port: port, tls: clientTLS) { connection in
                let count = LoopBox(0)
                connection.onFrame = { _ in count.value += 1 }
                connection.onClose = {
                    echoes.succeed(count.value)
                    clientClosed.succeed($0)
                }
                connection.onTLSEstablished = { [unowned connection] in
                    for index in 0..<20 { connection.send(frame: payload(index * 1000)) }
                    connection.shutdownWrite()
                }
            }
            #expect(try await echoes.get() == 20)
            #expect(try await clientClosed.get() == nil)
            #expect(try await serverClosed.get() == nil)
        }
    }

    @Test("a server that answers and closes in onConnection, before the handshake, gets its answer through")
    func refusalBeforeHandshake() async throws {
        let serverTLS = try pki.serverContext()
        let clientTLS = try pki.clientContext()
        try await withLoop { loop in
            let port = try await loop.submit {
                try FrameListener(loop: loop, host: "127.0.0.1", port: 0, tls: serverTLS) { connection in
                    connection.send(frame: Array("the server is full".utf8))
                    connection.close()
                }.localPort
            }
            let answer = Promise<String>()
            let closed = Promise<ReactorError?>()
            _ = try await connectClient(on: loop, port: port, tls: clientTLS) { connection in
                connection.onFrame = { answer.succeed(String(decoding: $0, as: UTF8.self)) }
                connection.onClose = { closed.succeed($0) }
            }
            #expect(try await answer.get() == "the server is full")
            #expect(try await closed.get() == nil)
        }
    }

    @Test("a plaintext and a TLS listener on one loop serve clients side by side")
    func plaintextBesideTLS() async throws {
        let serverTLS = try pki.serverContext()
        let clientTLS = try pki.clientContext()
        try await withLoop { loop in
            let plainPort = try await startEchoServer(on: loop)
            let tlsPort = try await startEchoServer(on: loop, tls: serverTLS)
            let rounds = 200
            let done = Counter()
            let finished = Promise<Void>()
            for (port, tls) in [(plainPort, nil), (tlsPort, clientTLS)] as [(Int, TLSContext?)] {
                for client in 0..<4 {
                    _ = try await connectClient(on: loop, port: port, tls: tls) { connection in
                        let count = LoopBox(0)
                        connection.onFrame = { [unowned connection] payload in
                            if Array(payload) == frameBody(client, count.value) { count.value += 1 }
                            if count.value == rounds {
                                #expect(connection.isEncrypted == (tls != nil))
                                if done.increment() == 8 { finished.succeed(()) }
                            } else {
                                connection.send(frame: frameBody(client, count.value))
                            }
                        }
                        connection.send(frame: frameBody(client, 0))
                    }
                }
            }
            try await finished.get()
        }
    }

    @Test("exported keying material is equal on both ends and differs across connections; nil for plaintext")
    func exporter() async throws {
        let serverTLS = try pki.serverContext()
        let clientTLS = try pki.clientContext()
        try await withLoop { loop in
            let serverValues = LoopBox<[[UInt8]]>([])
            let serverGot = Promise<Void>()
            let port = try await loop.submit {
                try FrameListener(loop: loop, host: "127.0.0.1", port: 0, tls: serverTLS) { connection in
                    #expect(connection.exportKeyingMaterial(label: "EXPORTER-test", length: 32) == nil)
                    connection.onTLSEstablished = { [unowned connection] in
                        serverValues.value.append(connection.exportKeyingMaterial(label: "EXPORTER-test", length: 32) ?? [])
                        if serverValues.value.count == 2 { serverGot.succeed(()) }
                    }
                }.localPort
            }
            var clientValues: [[UInt8]] = []
            for _ in 0..<2 {
                let value = Promise<[UInt8]>()
                _ = try await connectClient(on: loop, port: port, tls: clientTLS) { connection in
                    connection.onTLSEstablished = { [unowned connection] in
                        value.succeed(connection.exportKeyingMaterial(label: "EXPORTER-test", length: 32) ?? [])
                    }
                }
                clientValues.append(try await value.get())
            }
            try await serverGot.get()
            let server = try await loop.submit { serverValues.value }
            #expect(clientValues[0].count == 32)
            #expect(Set(server) == Set(clientValues))
            #expect(clientValues[0] != clientValues[1])

            let plainPort = try await startEchoServer(on: loop)
            let plain = try await connectClient(on: loop, port: plainPort) { _ in }
            let plainExport = try await loop.submit { plain.value?.exportKeyingMaterial(label: "EXPORTER-test", length: 32) }
            #expect(plainExport == nil)
        }
    }

    @Test("mutual TLS: a client with a certificate from the trusted CA is accepted, and each end sees the other's subject")
    func mutualTLSAccepted() async throws {
        let serverTLS = try pki.serverContext(clientCA: pki.caPath)
        let clientTLS = try pki.clientContext(identity: pki.client)
        try await withLoop { loop in
            let serverSaw = Promise<String?>()
            let port = try await loop.submit {
                try FrameListener(loop: loop, host: "127.0.0.1", port: 0, tls: serverTLS) { connection in
                    connection.onFrame = { [unowned connection] payload in
                        serverSaw.succeed(connection.peerCertificateSubject)
                        connection.send(frame: payload)
                    }
                }.localPort
            }
            let clientSaw = Promise<String?>()
            _ = try await connectClient(on: loop, port: port, tls: clientTLS) { connection in
                connection.onFrame = { [unowned connection] _ in clientSaw.succeed(connection.peerCertificateSubject) }
                connection.send(frame: [1, 2, 3])
            }
            let client = try await serverSaw.get()
            let server = try await clientSaw.get()
            #expect(client?.contains("CN=worker-1") == true)
            #expect(server?.contains("CN=localhost") == true)
        }
    }
}
