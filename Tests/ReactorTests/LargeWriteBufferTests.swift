@testable import Reactor
import Testing

/// The loop's cache of large write buffers: frames above a quarter chunk reuse the buffers of earlier
/// ones instead of a fresh allocation each (which glibc maps and unmaps above 128 KiB).
@Suite("large write buffers", .timeLimit(.minutes(2)))
struct LargeWriteBufferTests {
    @Test("a recycled buffer is handed out again for a write of about its size, not for a much smaller one")
    func reuseBySize() throws {
        let loop = try EventLoop()
        let first = loop.takeLargeBuffer(minimumCapacity: 400_000)
        #expect(first.capacity >= 400_000 && first.capacity % 65_536 == 0)
        loop.recycleLargeBuffer(first.base, capacity: first.capacity)
        #expect(loop.keptLargeBufferBytes == first.capacity)
        let again = loop.takeLargeBuffer(minimumCapacity: 399_000)
        #expect(again.base == first.base && loop.keptLargeBufferBytes == 0)
        loop.recycleLargeBuffer(again.base, capacity: again.capacity)
        // Less than half its size: a buffer of its own, and the big one stays kept.
        let small = loop.takeLargeBuffer(minimumCapacity: 100_000)
        #expect(small.base != first.base && loop.keptLargeBufferBytes == first.capacity)
        small.base.deallocate()
    }

    @Test("the cache stays within its bounds, letting the oldest go")
    func bounded() throws {
        let loop = try EventLoop()
        let size = 1 << 20
        var bases: [UnsafeMutableRawPointer] = []
        for _ in 0..<(EventLoop.maxLargeBuffers + 8) {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            bases.append(buffer)
            loop.recycleLargeBuffer(buffer, capacity: size)
            #expect(loop.keptLargeBufferBytes <= EventLoop.maxLargeBufferBytes)
        }
        #expect(loop.keptLargeBufferBytes == EventLoop.maxLargeBuffers * size)
        // The newest are kept; the oldest went.
        let taken = loop.takeLargeBuffer(minimumCapacity: size)
        #expect(bases.suffix(EventLoop.maxLargeBuffers).contains(taken.base))
        taken.base.deallocate()
        // One buffer above the whole bound is freed at once rather than emptying the cache.
        let huge = UnsafeMutableRawPointer.allocate(byteCount: EventLoop.maxLargeBufferBytes + 1, alignment: 16)
        let before = loop.keptLargeBufferBytes
        loop.recycleLargeBuffer(huge, capacity: EventLoop.maxLargeBufferBytes + 1)
        #expect(loop.keptLargeBufferBytes == before)
    }

    @Test("echoing large frames one after another keeps a bounded set of buffers and every byte right")
    func echoReusesBuffers() async throws {
        try await withLoop { loop in
            let port = try await startEchoServer(on: loop)
            let rounds = 40
            let frames = (0..<rounds).map { payload(400_000 + $0 % 3 * 1_000, seed: $0) }
            let done = Promise<(intact: Bool, kept: [Int])>()
            _ = try await connectClient(on: loop, port: port) { connection in
                let next = LoopBox(0), intact = LoopBox(true), kept = LoopBox<[Int]>([])
                connection.onFrame = { echoed in
                    if !echoed.elementsEqual(frames[next.value]) { intact.value = false }
                    kept.value.append(loop.keptLargeBufferBytes)
                    next.value += 1
                    if next.value == rounds {
                        done.succeed((intact.value, kept.value))
                    } else {
                        connection.send(frame: frames[next.value])
                    }
                }
                connection.send(frame: frames[0])
            }
            let (intact, kept) = try await done.get()
            #expect(intact)
            // Both ends write one 400 KB frame at a time: after the first round trips the same few
            // buffers go round, so what is kept never grows past a handful of them.
            let perBuffer = (403_000 + 65_535) / 65_536 * 65_536
            #expect(kept.max()! <= 4 * perBuffer, "\(kept)")
            #expect(kept.suffix(rounds / 2).allSatisfy { $0 > 0 }, "\(kept)")
        }
    }
}
