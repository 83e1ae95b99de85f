@testable import Reactor
import Testing

/// Collects the frames a TLS session decrypts, as ``FrameConnection`` would deliver them.
private final class FrameCollector: TLSPlaintextSink {
    var decoder = FrameDecoder(maxFrameLength: 16 << 20)
    var frames: [[UInt8]] = []
    var established = false

    func tlsDidEstablish() -> Bool {
        established = true
        return true
    }

    func directTarget() -> UnsafeMutableRawBufferPointer? { decoder.directReadTarget(minimum: 1024) }

    func didDecryptDirectly(_ count: Int) -> Bool {
        if let frame = decoder.didReadDirectly(count) {
            frames.append(Array(frame.payload))
            decoder.recycle()
        }
        return true
    }

    func didDecrypt(_ plaintext: UnsafeRawBufferPointer) -> Bool {
        try! decoder.decode(plaintext) { frames.append(Array($0)) }
        return true
    }
}

/// A client and a server session joined by memory, with ciphertext moved in slices of chosen sizes.
private struct SessionPair {
    let client: TLSSession
    let server: TLSSession
    let clientSink = FrameCollector()
    let serverSink = FrameCollector()
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)

    init() throws {
        let pki = TestPKI.shared
        client = try TLSSession(context: try pki.clientContext(), serverName: "localhost")
        server = try TLSSession(context: try pki.serverContext())
    }

    /// Everything `from` has for its peer, in slices of `sliceSize(index)` bytes.
    func move(from sender: TLSSession, to receiver: TLSSession, sink: FrameCollector,
              sliceSize: (Int) -> Int) throws -> TLSSession.Outcome {
        var bytes = [UInt8](repeating: 0, count: sender.pendingCiphertext)
        let taken = bytes.withUnsafeMutableBytes { sender.takeCiphertext(into: $0) }
        #expect(taken == bytes.count)
        var outcome = TLSSession.Outcome.needsCiphertext
        var offset = 0
        var index = 0
        while offset < bytes.count {
            let count = min(max(sliceSize(index), 1), bytes.count - offset)
            outcome = try bytes[offset..<(offset + count)].withUnsafeBytes {
                try receiver.process($0, scratch: scratch, into: sink)
            }
            offset += count
            index += 1
        }
        return outcome
    }

    func handshake(sliceSize: @escaping (Int) -> Int = { _ in 1 << 20 }) throws {
        try client.startHandshake()
        // Bounded: a TLS 1.3 handshake is one and a half round trips.
        for _ in 0..<4 where !(client.isEstablished && server.isEstablished) {
            _ = try move(from: client, to: server, sink: serverSink, sliceSize: sliceSize)
            _ = try move(from: server, to: client, sink: clientSink, sliceSize: sliceSize)
        }
    }
}

@Suite("TLSSession without a socket")
struct TLSSessionTests {
    @Test("a handshake fed one byte at a time, then frames fed in odd slices, split and decrypted exactly")
    func byteByByte() throws {
        let pair = try SessionPair()
        defer { pair.scratch.deallocate() }
        try pair.handshake { _ in 1 }
        #expect(pair.client.isEstablished && pair.server.isEstablished)
        #expect(pair.clientSink.established && pair.serverSink.established)
        let frames = [0, 1, 5, 300, 16_380, 16_384, 40_000, 1 << 20].map { payload($0, seed: $0) }
        for frame in frames {
            let bytes = frameBytes(frame)
            // Records of up to 16 KiB, as FrameConnection writes them.
            var offset = 0
            while offset < bytes.count {
                let count = min(bytes.count - offset, TLSSession.maxRecordPlaintext)
                try bytes[offset..<(offset + count)].withUnsafeBytes { try pair.client.write($0) }
                offset += count
            }
        }
        let outcome = try pair.move(from: pair.client, to: pair.server, sink: pair.serverSink) { 1 + ($0 * 7919) % 3000 }
        #expect(outcome == .needsCiphertext)
        #expect(pair.serverSink.frames == frames)
    }

    @Test("exported keying material and tls-unique match across the pair; a different label gives a different value")
    func exporter() throws {
        let pair = try SessionPair()
        defer { pair.scratch.deallocate() }
        #expect(pair.client.exportKeyingMaterial(label: "EXPORTER-test", length: 32) == nil)
        try pair.handshake()
        let client = pair.client.exportKeyingMaterial(label: "EXPORTER-test", length: 32)
        #expect(client != nil)
        #expect(client == pair.server.exportKeyingMaterial(label: "EXPORTER-test", length: 32))
        #expect(client != pair.client.exportKeyingMaterial(label: "EXPORTER-other", length: 32))
        let binding = pair.client.tlsUniqueChannelBinding
        #expect(binding?.count == 32)  // the client's Finished, SHA-256 sized
        #expect(binding == pair.server.tlsUniqueChannelBinding)
        #expect(pair.client.peerCertificateSubject?.contains("CN=localhost") == true)
        #expect(pair.server.peerCertificateSubject == nil)
    }

    @Test("a tampered record fails authentication, and the session stays failed")
    func tampering() throws {
        let pair = try SessionPair()
        defer { pair.scratch.deallocate() }
        try pair.handshake()
        try frameBytes(payload(100)).withUnsafeBytes { try pair.client.write($0) }
        var bytes = [UInt8](repeating: 0, count: pair.client.pendingCiphertext)
        _ = bytes.withUnsafeMutableBytes { pair.client.takeCiphertext(into: $0) }
        bytes[bytes.count / 2] ^= 1
        var first: ReactorError?
        do {
            _ = try bytes.withUnsafeBytes { try pair.server.process($0, scratch: pair.scratch, into: pair.serverSink) }
        } catch let error as ReactorError {
            first = error
        }
        #expect(first?.message == "a TLS record from the client failed authentication: it was corrupted or tampered with in transit")
        #expect(pair.server.failure == first)
        #expect(throws: ReactorError.self) { try pair.server.process(UnsafeRawBufferPointer(start: nil, count: 0), scratch: pair.scratch, into: pair.serverSink) }
        #expect(pair.server.pendingCiphertext > 0)  // the alert for the client
    }

    @Test("close_notify reaches the peer as closedByPeer")
    func closeNotify() throws {
        let pair = try SessionPair()
        defer { pair.scratch.deallocate() }
        try pair.handshake()
        pair.client.close()
        #expect(try pair.move(from: pair.client, to: pair.server, sink: pair.serverSink) { _ in 1 << 20 } == .closedByPeer)
    }

    @Test("the sniffer tells a real ClientHello and alert from Downpour frames")
    func sniffer() throws {
        let pair = try SessionPair()
        defer { pair.scratch.deallocate() }
        try pair.client.startHandshake()
        var hello = [UInt8](repeating: 0, count: pair.client.pendingCiphertext)
        _ = hello.withUnsafeMutableBytes { pair.client.takeCiphertext(into: $0) }
        hello.withUnsafeBytes { bytes in
            #expect(TLSRecordSniffer.looksLikeTLS(bytes))
            #expect(TLSRecordSniffer.canBeginTLS(bytes, fromServer: false))
        }
        TLSRecordSniffer.unexpectedMessageAlert.withUnsafeBytes { #expect(TLSRecordSniffer.looksLikeTLS($0)) }
        for size in [0, 1, 22, 790, 66_326, 1 << 20] {
            frameBytes(payload(min(size, 64), seed: 3) + [UInt8](repeating: 0, count: max(size - 64, 0))).withUnsafeBytes { bytes in
                #expect(!TLSRecordSniffer.looksLikeTLS(bytes), "a frame of \(size) bytes")
                // 66,326 is 16 03 01 00 as a length prefix: the start of a record, which OpenSSL then refuses.
                if size != 66_326 { #expect(!TLSRecordSniffer.canBeginTLS(bytes, fromServer: false), "a frame of \(size) bytes") }
            }
        }
        Array("GET / HTTP/1.1\r\n".utf8).withUnsafeBytes { #expect(!TLSRecordSniffer.canBeginTLS($0, fromServer: false)) }
    }
}
