import Reactor
import Testing

@Suite("FrameDecoder")
struct FrameDecoderTests {
    /// Three frames (empty, small, larger) back to back.
    static let stream: [UInt8] = frameBytes([]) + frameBytes([1, 2, 3]) + frameBytes(payload(300))
    static let expected: [[UInt8]] = [[], [1, 2, 3], payload(300)]

    private func decode(_ pieces: [ArraySlice<UInt8>], maxFrameLength: Int = 1 << 20) throws -> [[UInt8]] {
        var decoder = FrameDecoder(maxFrameLength: maxFrameLength)
        var frames: [[UInt8]] = []
        for piece in pieces {
            try Array(piece).withUnsafeBytes { bytes in
                try decoder.decode(bytes) { frames.append(Array($0)) }
            }
        }
        let midFrame = decoder.isMidFrame
        #expect(!midFrame)
        return frames
    }

    @Test("many frames in one read")
    func wholeStream() throws {
        #expect(try decode([Self.stream[...]]) == Self.expected)
    }

    @Test("one byte at a time")
    func byteAtATime() throws {
        #expect(try decode(Self.stream.indices.map { Self.stream[$0...$0] }) == Self.expected)
    }

    @Test("split at every point", arguments: 1..<stream.count)
    func splitAt(_ split: Int) throws {
        #expect(try decode([Self.stream[..<split], Self.stream[split...]]) == Self.expected)
    }

    @Test("split at every pair of points")
    func splitTwice() throws {
        let stream = Self.stream
        for first in stride(from: 1, to: stream.count, by: 7) {
            for second in first..<stream.count {
                let frames = try decode([stream[..<first], stream[first..<second], stream[second...]])
                #expect(frames == Self.expected)
            }
        }
    }

    @Test("a length above the maximum throws before allocating", arguments: [0, 1, 2, 3])
    func oversized(splitAt split: Int) throws {
        var decoder = FrameDecoder(maxFrameLength: 100)
        let bytes: [UInt8] = [0xff, 0xff, 0xff, 0x7f, 1, 2, 3]
        var delivered = 0
        let error = #expect(throws: ReactorError.self) {
            try bytes[..<split].withUnsafeBytes { try decoder.decode($0) { _ in delivered += 1 } }
            try bytes[split...].withUnsafeBytes { try decoder.decode($0) { _ in delivered += 1 } }
        }
        #expect(error?.kind == .frameTooLong)
        #expect(delivered == 0)
    }

    @Test("a length exactly at the maximum is accepted")
    func atMaximum() throws {
        #expect(try decode([frameBytes(payload(100))[...]], maxFrameLength: 100) == [payload(100)])
    }

    @Test("next() returns whole frames in place and gathered ones from its buffer")
    func pull() throws {
        var decoder = FrameDecoder(maxFrameLength: 1000)
        let bytes = frameBytes([1, 2]) + frameBytes(payload(10))
        var kinds: [Bool] = []
        try bytes[..<8].withUnsafeBytes { chunk in
            var input = chunk
            while let frame = try decoder.next(&input) { kinds.append(frame.gathered) }
            #expect(input.isEmpty)
        }
        try bytes[8...].withUnsafeBytes { chunk in
            var input = chunk
            while let frame = try decoder.next(&input) {
                kinds.append(frame.gathered)
                #expect(Array(frame.payload) == payload(10))
            }
        }
        #expect(kinds == [false, true])
    }

    @Test("a partial frame is reported as mid-frame")
    func midFrame() throws {
        var decoder = FrameDecoder(maxFrameLength: 100)
        let bytes = Array(frameBytes(payload(10)).prefix(7))
        try bytes.withUnsafeBytes { try decoder.decode($0) { _ in } }
        let midFrame = decoder.isMidFrame
        let description = decoder.bufferedDescription
        #expect(midFrame)
        #expect(description == "3 of 10 payload bytes")
    }

    @Test("direct reads complete a gathered frame without a copy")
    func directRead() throws {
        var decoder = FrameDecoder(maxFrameLength: 1 << 20)
        let body = payload(100_000)
        let bytes = frameBytes(body)
        var frames: [[UInt8]] = []
        try bytes[..<1000].withUnsafeBytes { try decoder.decode($0) { frames.append(Array($0)) } }
        var offset = 1000
        while offset < bytes.count {
            let next = decoder.directReadTarget(minimum: 1)
            let target = try #require(next)
            let count = min(target.count, 30_000)
            bytes[offset..<offset + count].withUnsafeBytes { target.copyMemory(from: $0) }
            offset += count
            if let frame = decoder.didReadDirectly(count) {
                #expect(frame.gathered)
                frames.append(Array(frame.payload))
            }
        }
        #expect(frames == [body])
        let done = decoder.directReadTarget(minimum: 1) == nil
        #expect(done)
    }
}
