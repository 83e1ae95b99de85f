import Foundation
import Messages
import WireCodec

/// libFuzzer's entry point: plays one hostile peer against a real `ParameterServerRuntime` in this
/// process (``InProcessServer``), then checks that the server still serves an honest worker.
///
/// Input layout: if bit 1 of byte 0 is set, the peer talks to the server that requires a token,
/// otherwise to the one without. If bit 0 is set, a valid Hello frame is sent first so that the rest
/// reaches the joined state (pulls, pushes, leaves), or, with a token, the authentication exchange
/// (a ChallengeResponse it cannot forge); the bytes after byte 0 follow as they are, lengths and
/// all. The connection is then half-closed, and the server must close it within a few seconds (it
/// has seen the end of the stream). Then a fresh connection says Hello and must be welcomed.
///
/// A trap or an AddressSanitizer report on the server's thread fails this input too, as does a server
/// that hangs. The server's state carries over from input to input (the worker count, the ledger), so
/// a crash may need the inputs before it; libFuzzer's crash file holds the last one.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzServerConnection(_ data: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count >= 1 else { return 0 }
    let input = UnsafeRawBufferPointer(start: data, count: count)
    let authenticating = input[0] & 2 == 2
    let server = authenticating ? InProcessServer.authenticating : InProcessServer.shared
    do {
        let peer = BlockingSocket(port: server.port)
        var written = true
        if input[0] & 1 == 1 {
            written = Hello.frame(named: "fuzz-peer").withUnsafeBytes { peer.write($0) }
        }
        if written {
            _ = peer.write(UnsafeRawBufferPointer(rebasing: input[1...]))
        }
        peer.finishWriting()
        // Whatever the server answers is read and dropped; only its closing the connection counts.
        let deadline = ContinuousClock.now + .seconds(5)
        var closed = false
        while !closed, let chunk = peer.read(until: deadline) {
            closed = chunk.isEmpty
        }
        if !closed {
            fatalError("FuzzServerConnection: the server kept a connection open 5 s after its end of stream")
        }
    }
    probe(port: server.port, expectChallenge: authenticating)
    return 0
}

/// Says Hello on a new connection and requires a Welcome frame (a Challenge from the server with a
/// token) within 5 s.
func probe(port: Int, expectChallenge: Bool) {
    let probe = BlockingSocket(port: port)
    _ = Hello.frame(named: "fuzz-probe").withUnsafeBytes { probe.write($0) }
    var received: [UInt8] = []
    let deadline = ContinuousClock.now + .seconds(5)
    while received.count < 4 || received.count < 4 + Int(received.frameLength) {
        guard let chunk = probe.read(until: deadline) else {
            fatalError("FuzzServerConnection: no Welcome for a valid Hello within 5 s")
        }
        if chunk.isEmpty { fatalError("FuzzServerConnection: the server closed a valid worker's connection") }
        received += chunk
    }
    let envelope: Envelope
    do {
        envelope = try Envelope(serializedBytes: received[4..<(4 + Int(received.frameLength))])
    } catch {
        fatalError("FuzzServerConnection: the server's first frame is not an Envelope: \(error)")
    }
    switch (envelope.body, expectChallenge) {
    case (.welcome?, false), (.challenge?, true):
        break
    default:
        fatalError("FuzzServerConnection: a valid Hello got \(String(describing: envelope.body)) instead of a "
            + (expectChallenge ? "Challenge" : "Welcome"))
    }
}

extension Hello {
    /// A length-prefixed Envelope holding a Hello that the server accepts.
    static func frame(named name: String) -> [UInt8] {
        let hello = Hello(protocolVersion: 1, workerName: name, capabilities: Capabilities(threads: 1, architectures: ["mlp"]))
        let payload = Envelope(body: .hello(hello)).serializedBytes()
        return withUnsafeBytes(of: UInt32(payload.count).littleEndian) { Array($0) } + payload
    }
}

extension Array where Element == UInt8 {
    /// The little-endian length prefix at the start.
    var frameLength: UInt32 {
        UInt32(self[0]) | UInt32(self[1]) << 8 | UInt32(self[2]) << 16 | UInt32(self[3]) << 24
    }
}
