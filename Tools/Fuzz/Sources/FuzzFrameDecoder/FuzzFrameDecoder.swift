import Reactor

/// libFuzzer's entry point: feeds the input, cut into reads, to `FrameDecoder` and checks that the
/// frames it returns are exactly those of ``ReferenceFrameDecoder``, that an oversized length is a
/// thrown `.frameTooLong` (never a trap or an allocation), and that `isMidFrame` is right at the end.
///
/// Input layout: byte 0 sets the maximum frame length (twice its value, 0 to 510, so that both fitting
/// and oversized lengths are easy to reach); byte 1 seeds the ``ChunkSchedule``; the rest is the stream.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrameDecoder(_ data: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count >= 2 else { return 0 }
    let input = Array(UnsafeRawBufferPointer(start: data, count: count))
    let maxFrameLength = Int(input[0]) * 2
    let stream = input[2...]
    let expected = ReferenceFrameDecoder(stream: stream, maxFrameLength: maxFrameLength)

    var decoder = FrameDecoder(maxFrameLength: maxFrameLength)
    var schedule = ChunkSchedule(seed: input[1], streamLength: stream.count)
    var frames: [[UInt8]] = []
    var thrown: ReactorError?
    stream.withUnsafeBytes { bytes in
        var offset = 0
        reading: while offset < bytes.count {
            let readLength = min(schedule.nextReadLength(), bytes.count - offset)
            var read = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + readLength)])
            offset += readLength
            // A socket read straight into the frame being gathered, as FrameConnection does for big frames.
            if let minimum = schedule.nextDirectReadMinimum(), let target = decoder.directReadTarget(minimum: minimum) {
                let direct = min(target.count, read.count)
                target.baseAddress!.copyMemory(from: read.baseAddress!, byteCount: direct)
                if let frame = decoder.didReadDirectly(direct) {
                    check(frame.gathered, "a frame completed by a direct read must be gathered")
                    frames.append(Array(frame.payload))
                }
                // The rest of the read goes through next(_:) below, as if it were the following read.
                read = UnsafeRawBufferPointer(rebasing: read[direct...])
            }
            do throws(ReactorError) {
                while let frame = try decoder.next(&read) {
                    frames.append(Array(frame.payload))
                }
            } catch {
                thrown = error
                break reading
            }
            check(read.isEmpty, "next(_:) returned nil with \(read.count) bytes of its input unread")
        }
    }

    check(frames.count == expected.frames.count,
          "decoded \(frames.count) frames where the reference decodes \(expected.frames.count)")
    for (index, (got, want)) in zip(frames, expected.frames).enumerated() {
        check(got == want, "frame \(index) differs: \(got.count) bytes, the reference has \(want.count)")
    }
    switch expected.ending {
    case .tooLong:
        check(thrown?.kind == .frameTooLong, "an oversized length prefix gave \(String(describing: thrown))")
    case .midFrame:
        check(thrown == nil, "a stream ending mid-frame threw \(String(describing: thrown))")
        check(decoder.isMidFrame, "the stream ends mid-frame but isMidFrame is false")
    case .clean:
        check(thrown == nil, "a well-formed stream threw \(String(describing: thrown))")
        check(!decoder.isMidFrame, "the stream ends on a frame boundary but isMidFrame is true")
    }
    return 0
}

/// Stops the process, which libFuzzer reports as a crash with the input that caused it.
func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("FuzzFrameDecoder: \(message())") }
}
