@testable import Reactor
import Testing

/// The decoder's side of frame limits and budgets, driven by hand: no sockets, no loop.
@Suite("FrameDecoder limits and FrameBufferBudget")
struct FrameBufferBudgetTests {
    /// Feeds `bytes` to `decoder` as FrameConnection does, recycling each gathered frame once used;
    /// returns the payloads of the frames it completes.
    private func feed(_ decoder: inout FrameDecoder, _ bytes: ArraySlice<UInt8>) throws -> [[UInt8]] {
        var frames: [[UInt8]] = []
        try Array(bytes).withUnsafeBytes { chunk in
            var input = chunk
            while let frame = try decoder.next(&input) {
                frames.append(Array(frame.payload))
                if frame.gathered { decoder.recycle() }
            }
        }
        return frames
    }

    @Test("a limit raised or lowered between frames governs the next length prefix, even a split one")
    func limitChangesAtRuntime() throws {
        var decoder = FrameDecoder(maxFrameLength: 100)
        let big = frameBytes(payload(200))
        // Half a length prefix arrives under the old limit; the check happens when it is complete.
        #expect(try feed(&decoder, big[..<2]) == [])
        decoder.maxFrameLength = 300
        #expect(try feed(&decoder, big[2...]) == [payload(200)])

        decoder.maxFrameLength = 150
        #expect(decoder.maxFrameLength == 150)
        #expect(try feed(&decoder, frameBytes(payload(150))[...]) == [payload(150)])
        let error = #expect(throws: ReactorError.self) { try feed(&decoder, big[...]) }
        #expect(error?.kind == .frameTooLong)
        #expect(error?.message.contains("200") == true)
        #expect(error?.message.contains("150") == true)
    }

    @Test("lowering the limit below a frame being gathered lets that frame finish")
    func limitLoweredMidFrame() throws {
        var decoder = FrameDecoder(maxFrameLength: 1000)
        let bytes = frameBytes(payload(500))
        #expect(try feed(&decoder, bytes[..<100]) == [])
        decoder.maxFrameLength = 10
        #expect(try feed(&decoder, bytes[100...]) == [payload(500)])
        let error = #expect(throws: ReactorError.self) { try feed(&decoder, frameBytes(payload(20))[...]) }
        #expect(error?.kind == .frameTooLong)
        #expect(error?.message.contains("length prefix 20 ") == true)
    }

    @Test("a frame whole in one read needs no reservation; a split one is refused by an empty budget")
    func wholeFramesAreFree() throws {
        let budget = FrameBufferBudget(limit: 0)
        var decoder = FrameDecoder(maxFrameLength: 1000, budget: budget)
        let bytes = frameBytes(payload(100))
        #expect(try feed(&decoder, bytes[...]) == [payload(100)])
        #expect(try feed(&decoder, frameBytes([])[...]) == [[]])
        let error = #expect(throws: ReactorError.self) { try feed(&decoder, bytes[..<50]) }
        #expect(error?.kind == .frameBudgetExceeded)
        #expect(error?.message.contains("length prefix 100 ") == true)
        #expect(budget.reserved == 0)
        #expect(decoder.heldBufferBytes == 0)
    }

    @Test("a gathered frame holds its reservation until it is recycled", arguments: 4..<303)
    func reservationLifetime(splitAt split: Int) throws {
        let budget = FrameBufferBudget(limit: 1000)
        var decoder = FrameDecoder(maxFrameLength: 1000, budget: budget)
        let bytes = frameBytes(payload(300))
        #expect(try feed(&decoder, bytes[..<split]) == [])
        #expect(budget.reserved == 300)
        var frames: [[UInt8]] = []
        try bytes[split...].withUnsafeBytes { chunk in
            var input = chunk
            let frame = try #require(try decoder.next(&input))
            #expect(frame.gathered)
            frames.append(Array(frame.payload))
            #expect(try decoder.next(&input) == nil)
        }
        // The payload is the caller's to read until it says it is done: its memory stays reserved.
        #expect(budget.reserved == 300)
        decoder.recycle()
        #expect(frames == [payload(300)])
        #expect(budget.reserved == 0)
        // With a budget attached nothing is kept between frames.
        #expect(decoder.heldBufferBytes == 0)
        decoder.recycle()
        #expect(budget.reserved == 0)
    }

    @Test("without recycle(), the next gathered frame gives the last one's reservation back")
    func reservationEndsAtNextGatheredFrame() throws {
        let budget = FrameBufferBudget(limit: 1000)
        var decoder = FrameDecoder(maxFrameLength: 1000, budget: budget)
        let bytes = frameBytes(payload(300)) + frameBytes(payload(5)) + frameBytes(payload(200))
        try bytes.withUnsafeBytes { all in
            var input = UnsafeRawBufferPointer(rebasing: all[..<100])
            #expect(try decoder.next(&input) == nil)
            // The rest of the 300-byte frame, then a 5-byte frame whole.
            input = UnsafeRawBufferPointer(rebasing: all[100..<313])
            let first = try #require(try decoder.next(&input))
            #expect(first.payload.count == 300)
            let second = try #require(try decoder.next(&input))
            #expect(!second.gathered)
            // A whole frame needs nothing, and leaves the gathered frame's reservation alone.
            #expect(budget.reserved == 300)
            #expect(try decoder.next(&input) == nil)
            input = UnsafeRawBufferPointer(rebasing: all[313..<400])
            #expect(try decoder.next(&input) == nil)
            #expect(budget.reserved == 200)
        }
    }

    @Test("decoders sharing a budget: the frame that would pass it is refused, the others finish")
    func sharedBudget() throws {
        let budget = FrameBufferBudget(limit: 500)
        var first = FrameDecoder(maxFrameLength: 1000, budget: budget)
        var second = FrameDecoder(maxFrameLength: 1000, budget: budget)
        var third = FrameDecoder(maxFrameLength: 1000, budget: budget)
        let bytes = frameBytes(payload(300))
        #expect(try feed(&first, bytes[..<10]) == [])
        let error = #expect(throws: ReactorError.self) { try feed(&second, bytes[..<10]) }
        #expect(error?.kind == .frameBudgetExceeded)
        for figure in ["300", "200", "500"] { #expect(error?.message.contains(figure) == true, "\(figure)") }
        #expect(budget.reserved == 300)
        // A smaller frame still fits beside the first.
        #expect(try feed(&third, frameBytes(payload(200))[..<10]) == [])
        #expect(budget.reserved == 500)
        #expect(try feed(&first, bytes[10...]) == [payload(300)])
        #expect(try feed(&third, frameBytes(payload(200))[10...]) == [payload(200)])
        #expect(budget.reserved == 0)
    }

    @Test("a reservation returns once, to the budget it came from, however the budget changes mid-frame")
    func switchingBudgetsMidFrame() throws {
        let original = FrameBufferBudget(limit: 1000)
        let replacement = FrameBufferBudget(limit: 1000)
        var decoder = FrameDecoder(maxFrameLength: 1000, budget: original)
        let bytes = frameBytes(payload(300))
        #expect(try feed(&decoder, bytes[..<10]) == [])
        #expect(original.reserved == 300)
        // Detached mid-frame: the memory is still held, so the original budget still counts it.
        decoder.budget = nil
        #expect(original.reserved == 300)
        decoder.budget = replacement
        #expect(replacement.reserved == 0)
        #expect(try feed(&decoder, bytes[10...]) == [payload(300)])
        #expect(original.reserved == 0)
        #expect(replacement.reserved == 0)
        // The next frame draws on the new budget; dropping the decoder mid-frame gives it back.
        #expect(try feed(&decoder, bytes[..<10]) == [])
        #expect(replacement.reserved == 300)
        #expect(original.reserved == 0)
        _ = consume decoder
        #expect(replacement.reserved == 0)
    }

    @Test("reset() mid-frame frees the buffer and gives the reservation back")
    func resetMidFrame() throws {
        let budget = FrameBufferBudget(limit: 1000)
        var decoder = FrameDecoder(maxFrameLength: 1000, budget: budget)
        #expect(try feed(&decoder, frameBytes(payload(300))[..<10]) == [])
        #expect(decoder.heldBufferBytes == 300)
        decoder.reset()
        #expect(budget.reserved == 0)
        #expect(decoder.heldBufferBytes == 0)
        let midFrame = decoder.isMidFrame
        #expect(!midFrame)
        #expect(try feed(&decoder, frameBytes(payload(5))[...]) == [payload(5)])
    }

    @Test("the buffer kept for reuse never outlives a lower limit or a budget")
    func retainedBuffer() throws {
        var decoder = FrameDecoder(maxFrameLength: 1000)
        let bytes = frameBytes(payload(800))
        #expect(try feed(&decoder, bytes[..<10]) == [])
        #expect(try feed(&decoder, bytes[10...]) == [payload(800)])
        // Without a budget a gathered buffer is kept for the next frame, as before.
        #expect(decoder.heldBufferBytes == 800)
        // A limit lowered below it frees it: a peer demoted to small frames keeps no big buffer.
        decoder.maxFrameLength = 500
        #expect(decoder.heldBufferBytes == 0)

        let small = frameBytes(payload(400))
        #expect(try feed(&decoder, small[..<10]) == [])
        #expect(try feed(&decoder, small[10...]) == [payload(400)])
        #expect(decoder.heldBufferBytes == 400)
        // Attaching a budget frees it too: the budget must cover everything the decoder holds.
        let budget = FrameBufferBudget(limit: 1000)
        decoder.budget = budget
        #expect(decoder.heldBufferBytes == 0)
        #expect(budget.reserved == 0)
    }

    @Test("a limit lowered while a gathered frame is being read takes effect when the reader is done")
    func limitLoweredDuringDelivery() throws {
        var decoder = FrameDecoder(maxFrameLength: 1000)
        let bytes = frameBytes(payload(800))
        #expect(try feed(&decoder, bytes[..<10]) == [])
        try bytes[10...].withUnsafeBytes { chunk in
            var input = chunk
            let frame = try #require(try decoder.next(&input))
            decoder.maxFrameLength = 100
            // The payload is still intact: the buffer is not freed under the reader.
            #expect(Array(frame.payload) == payload(800))
            #expect(decoder.heldBufferBytes == 800)
        }
        decoder.recycle()
        #expect(decoder.heldBufferBytes == 0)
    }
}
