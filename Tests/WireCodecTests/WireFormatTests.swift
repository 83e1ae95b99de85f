import Testing
import WireCodec

@Suite("Varints, zigzag and sizes")
struct WireFormatTests {
    @Test("varint sizes at every boundary", arguments: [
        (UInt64(0), 1), (127, 1), (128, 2), (16_383, 2), (16_384, 3), (UInt64(1) << 35 - 1, 5),
        (UInt64(1) << 56, 9), (UInt64(1) << 63 - 1, 9), (UInt64.max, 10),
    ])
    func varintSize(value: UInt64, size: Int) {
        #expect(WireSize.varint(value) == size)
        var bytes = [UInt8](repeating: 0, count: size)
        bytes.withUnsafeMutableBytes { buffer in
            var writer = WireWriter(buffer: buffer)
            writer.writeVarint(value)
            #expect(writer.bytesWritten == size)
        }
        let (decoded, isAtEnd) = bytes.withUnsafeBytes { buffer in
            var reader = WireReader(bytes: buffer)
            return (try? reader.readVarint(), reader.isAtEnd)
        }
        #expect(decoded == value)
        #expect(isAtEnd)
    }

    @Test("zigzag maps small magnitudes to small numbers", arguments: [
        (Int64(0), UInt64(0)), (-1, 1), (1, 2), (-2, 3), (.max, .max - 1), (.min, .max),
    ])
    func zigzag64(value: Int64, encoded: UInt64) {
        #expect(ZigZag.encode(value) == encoded)
        #expect(ZigZag.decode(encoded) == value)
    }

    @Test("zigzag 32-bit extremes", arguments: [Int32.min, -1, 0, 1, Int32.max])
    func zigzag32(value: Int32) {
        #expect(ZigZag.decode(ZigZag.encode(value)) == value)
    }

    @Test("a writer that would overrun its buffer is a bug in the size: the message sizes agree")
    func sizesAgree() {
        var random = RandomMessages(seed: 11)
        for _ in 0..<50 {
            let message = random.everything()
            #expect(message.serializedBytes().count == message.serializedSize())
        }
    }
}
