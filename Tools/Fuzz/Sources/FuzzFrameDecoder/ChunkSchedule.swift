/// Where the fuzz input's stream is cut into reads, and which reads go straight into the decoder's
/// gathering buffer, all derived from one seed byte so that libFuzzer can steer (and reproduce) them.
///
/// The low two bits of the seed choose how long reads may be, from one byte at a time (every split
/// point) to several frames at once; the rest seed a xorshift generator that picks each length.
struct ChunkSchedule {
    private var state: UInt32
    private let longest: Int

    init(seed: UInt8, streamLength: Int) {
        // Never zero: xorshift would stay at zero.
        state = 0x9E37_79B9 ^ UInt32(seed) ^ UInt32(truncatingIfNeeded: streamLength) << 8
        longest = [1, 3, 17, 600][Int(seed & 3)]
    }

    private mutating func nextRandom() -> UInt32 {
        state ^= state << 13
        state ^= state >> 17
        state ^= state << 5
        return state
    }

    /// The length of the next read: 1 through the longest read this schedule allows.
    mutating func nextReadLength() -> Int {
        1 + Int(nextRandom() % UInt32(longest))
    }

    /// The `minimum` to ask ``FrameDecoder/directReadTarget(minimum:)`` with, or `nil` for an ordinary
    /// read into a shared buffer (as `FrameConnection` does for small remainders).
    mutating func nextDirectReadMinimum() -> Int? {
        let value = nextRandom()
        return value & 1 == 0 ? nil : 1 + Int(value >> 1 & 15)
    }
}
