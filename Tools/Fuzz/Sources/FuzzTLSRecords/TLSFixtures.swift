import Glibc
import Reactor

/// The certificate, contexts and established session pair the fuzz target reuses from input to input.
///
/// The certificate is made at start-up by the `openssl` program (a self-signed ECDSA P-256 one for
/// "localhost", trusted by the client as its own CA): no key is checked in.
enum TLSFixtures {
    static let server: TLSContext = {
        var template = Array("/tmp/downpour-fuzz-tls-XXXXXX".utf8CString)
        let directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        let certificate = directory + "/cert.pem"
        let key = directory + "/key.pem"
        // system(3), not Foundation's Process, whose weak references LeakSanitizer reports as leaks.
        let status = system("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout \(key) "
            + "-out \(certificate) -subj /CN=localhost -addext subjectAltName=DNS:localhost -days 2 2>/dev/null")
        guard status == 0 else { fatalError("FuzzTLSRecords: openssl could not make a certificate") }
        client = try! TLSContext.client(trustedCAPath: certificate)
        return try! TLSContext.server(certificateChainPath: certificate, privateKeyPath: key)
    }()

    /// Set when ``server`` is first used.
    nonisolated(unsafe) private(set) static var client: TLSContext!

    /// Scratch memory for decrypted plaintext, small so that records are split across it.
    nonisolated(unsafe) static let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 3000, alignment: 16)

    /// An established pair kept between inputs while it stays usable.
    nonisolated(unsafe) private static var cached: SessionPair?

    /// The established pair, made anew when the last input broke it.
    static func establishedPair() -> SessionPair {
        if let cached, cached.usable { return cached }
        let pair = SessionPair()
        cached = pair
        return pair
    }
}

/// A client and a server session joined by memory, handshake done.
final class SessionPair {
    let client: TLSSession
    let server: TLSSession
    /// False once an input tampered with the ciphertext or stopped the server mid-stream.
    var usable = true

    init() {
        server = try! TLSSession(context: TLSFixtures.server)
        client = try! TLSSession(context: TLSFixtures.client, serverName: "localhost")
        try! client.startHandshake()
        let sink = FrameCollector(maxFrameLength: 0, directReadMinimum: nil)
        // A TLS 1.3 handshake is one and a half round trips.
        for _ in 0..<3 where !(client.isEstablished && server.isEstablished) {
            _ = try! move(from: client, to: server, sink: sink, schedule: nil)
            _ = try! move(from: server, to: client, sink: sink, schedule: nil)
        }
        check(client.isEstablished && server.isEstablished, "an in-memory handshake did not complete")
    }
}

/// Moves everything `sender` has for its peer into `receiver`, in the slices `schedule` gives (or
/// all at once), and returns how the last slice's processing ended.
func move(from sender: TLSSession, to receiver: TLSSession, sink: FrameCollector,
          schedule: SliceSchedule?) throws(ReactorError) -> TLSSession.Outcome {
    var ciphertext = [UInt8](repeating: 0, count: sender.pendingCiphertext)
    let taken = ciphertext.withUnsafeMutableBytes { sender.takeCiphertext(into: $0) }
    check(taken == ciphertext.count, "takeCiphertext moved \(taken) of \(ciphertext.count) pending bytes")
    return try feed(ciphertext[...], to: receiver, sink: sink, schedule: schedule)
}

/// Gives `ciphertext` to `receiver` in slices.
func feed(_ ciphertext: ArraySlice<UInt8>, to receiver: TLSSession, sink: FrameCollector,
          schedule: SliceSchedule?) throws(ReactorError) -> TLSSession.Outcome {
    var schedule = schedule
    var outcome = TLSSession.Outcome.needsCiphertext
    var offset = ciphertext.startIndex
    while offset < ciphertext.endIndex {
        let count = min(schedule?.next() ?? Int.max, ciphertext.endIndex - offset)
        outcome = try withBytes(ciphertext[offset..<(offset + count)]) { bytes throws(ReactorError) in
            try receiver.process(bytes, scratch: TLSFixtures.scratch, into: sink)
        }
        offset += count
    }
    return outcome
}

/// `body` over the memory of `bytes`, keeping the type of its error (`withUnsafeBytes` rethrows any).
func withBytes<Value>(_ bytes: ArraySlice<UInt8>,
                      _ body: (UnsafeRawBufferPointer) throws(ReactorError) -> Value) throws(ReactorError) -> Value {
    try bytes.withUnsafeBytes { pointer in Result { () throws(ReactorError) in try body(pointer) } }.get()
}

/// Slice lengths drawn from a seed: mostly short (to split records and length prefixes anywhere),
/// sometimes long.
struct SliceSchedule {
    private var state: UInt32

    init(seed: UInt8) { state = UInt32(seed) &* 2_654_435_761 | 1 }

    mutating func next() -> Int {
        state = state &* 1_664_525 &+ 1_013_904_223
        let draw = Int(state >> 16)
        return draw % 8 == 0 ? 1 + draw % 40_000 : 1 + draw % 300
    }
}

/// Stops the process, which libFuzzer reports as a crash with the input that caused it.
func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("FuzzTLSRecords: \(message())") }
}
