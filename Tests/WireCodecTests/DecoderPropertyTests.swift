import Messages
import Testing
import WireCodec

@Suite("Property tests: round trips and hostile bytes")
struct DecoderPropertyTests {
    @Test("random messages round-trip", arguments: 0..<4)
    func randomRoundTrips(block: UInt64) throws {
        var random = RandomMessages(seed: 10_000 + block)
        for _ in 0..<100 {
            let message = random.everything()
            let bytes = message.serializedBytes()
            let decoded = try Everything(serializedBytes: bytes)
            #expect(decoded == message)
            #expect(decoded.serializedBytes() == bytes)
        }
    }

    /// Decodes hostile bytes; when they decode, re-encoding must be stable.
    static func decodeHostile(_ bytes: [UInt8]) -> Bool {
        var decodedAny = false
        if let message = try? Everything(serializedBytes: bytes) {
            let again = message.serializedBytes()
            #expect((try? Everything(serializedBytes: again))?.serializedBytes() == again)
            decodedAny = true
        }
        if let envelope = try? Envelope(serializedBytes: bytes) {
            #expect((try? Envelope(serializedBytes: envelope.serializedBytes())) != nil)
            decodedAny = true
        }
        _ = try? Tree(serializedBytes: bytes)
        _ = try? RepeatedScalars(serializedBytes: bytes)
        return decodedAny
    }

    @Test("random bytes never trap the decoder", arguments: 0..<4)
    func randomBytes(block: UInt64) {
        var generator = SeededGenerator(seed: 20_000 + block)
        for _ in 0..<5_000 {
            let count = Int.random(in: 0..<64, using: &generator)
            _ = Self.decodeHostile((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
        }
    }

    @Test("mutated valid messages never trap the decoder", arguments: 0..<4)
    func mutatedMessages(block: UInt64) {
        var random = RandomMessages(seed: 30_000 + block)
        var decoded = 0
        for _ in 0..<300 {
            var bytes = random.everything().serializedBytes()
            if bytes.isEmpty { continue }
            for _ in 0..<Int.random(in: 1...4, using: &random.generator) {
                let index = Int.random(in: 0..<bytes.count, using: &random.generator)
                switch Int.random(in: 0..<4, using: &random.generator) {
                case 0: bytes[index] = UInt8.random(in: 0...255, using: &random.generator)
                case 1: bytes[index] ^= 1 << UInt8.random(in: 0..<8, using: &random.generator)
                case 2: bytes.removeSubrange(index...)
                default: bytes.insert(UInt8.random(in: 0...255, using: &random.generator), at: index)
                }
                if bytes.isEmpty { break }
            }
            if Self.decodeHostile(bytes) { decoded += 1 }
        }
        #expect(decoded > 0)
    }
}
