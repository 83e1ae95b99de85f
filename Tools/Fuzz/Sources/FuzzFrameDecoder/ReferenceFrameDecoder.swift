/// The obvious frame decoder, for comparison: it sees the whole stream at once and never optimises.
///
/// A frame is a 4-byte little-endian length N, then N bytes. A length above the maximum is an error as
/// soon as its 4 bytes are seen, whether or not its payload follows, which is what ``FrameDecoder``
/// promises ("checked before anything is allocated").
struct ReferenceFrameDecoder {
    /// How the stream ended.
    enum Ending: Equatable {
        /// On a frame boundary.
        case clean
        /// Inside a length prefix or a payload.
        case midFrame
        /// At a length prefix above the maximum.
        case tooLong
    }

    /// The complete frames, in order, up to the ending.
    var frames: [[UInt8]] = []
    var ending = Ending.clean

    init(stream: ArraySlice<UInt8>, maxFrameLength: Int) {
        var offset = stream.startIndex
        while offset < stream.endIndex {
            guard stream.endIndex - offset >= 4 else {
                ending = .midFrame
                return
            }
            let length = (0..<4).reduce(0) { sum, i in sum | Int(stream[offset + i]) << (8 * i) }
            offset += 4
            guard length <= maxFrameLength else {
                ending = .tooLong
                return
            }
            guard stream.endIndex - offset >= length else {
                ending = .midFrame
                return
            }
            frames.append(Array(stream[offset..<(offset + length)]))
            offset += length
        }
    }
}
