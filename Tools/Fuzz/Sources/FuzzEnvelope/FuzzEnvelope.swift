import Messages
import WireCodec

/// libFuzzer's entry point: decodes the input as an `Envelope`, with unknown fields kept and with
/// them discarded. Malformed input must throw, never trap. What decodes must round-trip: its encoding
/// decodes again, and encodes to the same bytes (bytes rather than `==`, since a NaN float is unequal
/// to itself); a re-decoded message also has the same size and the same body case.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEnvelope(_ data: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: count)
    for options in [WireDecodingOptions(), WireDecodingOptions(discardUnknownFields: true), WireDecodingOptions(maxDepth: 2)] {
        guard let decoded = try? Envelope(serializedBytes: bytes, options: options) else { continue }
        checkRoundTrip(decoded, options: options)
    }
    return 0
}

/// Encodes `message`, decodes the encoding and encodes that again, requiring the same bytes.
func checkRoundTrip(_ message: Envelope, options: WireDecodingOptions) {
    let encoded = message.serializedBytes()
    check(encoded.count == message.serializedSize(), "serializedBytes() is not serializedSize() long")
    let again: Envelope
    do {
        // Depth limits apply to what we decoded, so a fresh decode of our own encoding must pass them too.
        again = try Envelope(serializedBytes: encoded, options: options)
    } catch {
        fatalError("FuzzEnvelope: the encoding of a decoded Envelope does not decode: \(error)")
    }
    check(again.bodyCase == message.bodyCase, "the body changed from \(message.bodyCase) to \(again.bodyCase)")
    check(again.serializedBytes() == encoded, "re-encoding a round-tripped Envelope gives other bytes")
    // The appending and in-place encoders must agree with serializedBytes().
    var appended: [UInt8] = [0xAB]
    again.serialize(into: &appended)
    check(appended.dropFirst().elementsEqual(encoded), "serialize(into: &array) differs from serializedBytes()")
}

extension Envelope {
    /// The body's case alone, for comparing messages whose floats may be NaN.
    var bodyCase: String {
        switch body {
        case .hello?: "hello"
        case .welcome?: "welcome"
        case .pull?: "pull"
        case .weights?: "weights"
        case .workUnit?: "workUnit"
        case .push?: "push"
        case .pushAck?: "pushAck"
        case .heartbeat?: "heartbeat"
        case .leave?: "leave"
        case .sessionEnd?: "sessionEnd"
        case .error?: "error"
        case .challenge?: "challenge"
        case .challengeResponse?: "challengeResponse"
        case nil: "nil"
        }
    }
}

/// Stops the process, which libFuzzer reports as a crash with the input that caused it.
func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("FuzzEnvelope: \(message())") }
}
