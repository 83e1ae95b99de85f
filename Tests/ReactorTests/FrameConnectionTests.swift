@testable import Reactor
import Testing

@Suite("FrameConnection over loopback", .timeLimit(.minutes(2)))
struct FrameConnectionTests {
    @Test("echo of one frame", arguments: [0, 1, 2, 3, 4, 5, 100, 4096, 65_536, 65_537, 1 << 20, 16 << 20])
    func echo(size: Int) async throws {
        try await withLoop { loop in
            let port = try await startEchoServer(on: loop)
            let sent = payload(size, seed: size)
            let received = Promise<[UInt8]>()
            _ = try await connectClient(on: loop, port: port) { connection in
                connection.onFrame = { received.succeed(Array($0)) }
                connection.send(frame: sent)
            }
            let echoed = try await received.get()
            #expect(echoed.count == sent.count)
            #expect(echoed == sent)
        }
    }

    @Test("many frames pipelined on one connection come back in order")
    func pipelined() async throws {
        try await withLoop { loop in
            let port = try await startEchoServer(on: loop)
            let count = 10_000
            let done = Promise<Bool>()
            _ = try await connectClient(on: loop, port: port) { connection in
                let next = LoopBox(0)
                let inOrder = LoopBox(true)
                connection.onFrame = { payload in
                    let value = payload.loadUnaligned(as: UInt32.self)
                    if value != UInt32(next.value) { inOrder.value = false }
                    next.value += 1
                    if next.value == count { done.succeed(inOrder.value) }
                }
                for index in 0..<count {
                    connection.sendFrame(payloadSize: 4 + index % 100) { buffer in
                        buffer.initializeMemory(as: UInt8.self, repeating: 0)
                        buffer.storeBytes(of: UInt32(index), as: UInt32.self)
                    }
                }
            }
            let observed1 = try await done.get()
            #expect(observed1)
        }
    }

    @Test("frames trickled over the socket one byte per write come back whole")
    func trickle() async throws {
        try await withLoop { loop in
            let port = try await startEchoServer(on: loop)
            let frames: [[UInt8]] = [[], [7], payload(5), payload(300), payload(3, seed: 1)]
            let stream = frames.flatMap(frameBytes)
            let received = Promise<[[UInt8]]>()
            let connected = Promise<Void>()
            let client = LoopBox<TCPConnection?>(nil)
            loop.execute {
                TCPConnection.connect(loop: loop, host: "127.0.0.1", port: port) { result in
                    guard case .success(let connection) = result else { return }
                    client.value = connection
                    // Decode the echoes with a decoder of our own, to see each frame once.
                    let decoder = LoopBox(FrameDecoderBox())
                    let seen = LoopBox<[[UInt8]]>([])
                    connection.onRead = { bytes in
                        try? decoder.value.decoder.decode(bytes) { seen.value.append(Array($0)) }
                        if seen.value.count == frames.count { received.succeed(seen.value) }
                    }
                    connected.succeed(())
                }
            }
            try await connected.get()
            // One byte per loop iteration: each write is flushed (TCP_NODELAY) before the next.
            let next = LoopBox(0)
            let step = LoopBox<(@Sendable () -> Void)?>(nil)
            step.value = {
                guard next.value < stream.count, let connection = client.value else { return }
                connection.write([stream[next.value]])
                next.value += 1
                loop.scheduleTimer(after: .zero) { step.value?() }
            }
            loop.execute { step.value?() }
            let echoed = try await received.get()
            loop.execute { step.value = nil }
            #expect(echoed == frames)
        }
    }

    @Test("500 concurrent connections each echo their own frames")
    func manyConnections() async throws {
        try await withLoop { loop in
            let port = try await startEchoServer(on: loop)
            let connections = 500
            let framesEach = 5
            let good = Counter()
            let finished = Counter()
            let done = Promise<Void>()
            for client in 0..<connections {
                loop.execute {
                    FrameConnection.connect(loop: loop, host: "127.0.0.1", port: port, retryInterval: .milliseconds(20),
                                            deadline: .now + .seconds(20)) { result in
                        guard case .success(let connection) = result else {
                            Issue.record("connect failed: \(result)")
                            return
                        }
                        let received = LoopBox(0)
                        connection.onFrame = { [unowned connection] payload in
                            if Array(payload) == frameBody(client, received.value) { good.increment() }
                            received.value += 1
                            if received.value == framesEach {
                                connection.close()
                            }
                        }
                        connection.onClose = { error in
                            #expect(error == nil)
                            if finished.increment() == connections { done.succeed(()) }
                        }
                        for frame in 0..<framesEach { connection.send(frame: frameBody(client, frame)) }
                    }
                }
            }
            try await done.get()
            #expect(good.value == connections * framesEach)
        }
    }

    @Test("an oversized length prefix closes that connection only")
    func oversized() async throws {
        try await withLoop { loop in
            let serverErrors = Promise<ReactorError?>()
            let port = try await startEchoServer(on: loop, configuration: .init(maxFrameLength: 1000)) { error in
                if error != nil { serverErrors.succeed(error) }
            }
            let goodEcho = Promise<[UInt8]>()
            let good = try await connectClient(on: loop, port: port) { connection in
                connection.onFrame = { goodEcho.succeed(Array($0)) }
            }
            let badClosed = Promise<ReactorError?>()
            _ = try await connectClient(on: loop, port: port) { connection in
                connection.onClose = { badClosed.succeed($0) }
                connection.writeUnframedForTesting(frameBytes(payload(1001)))
            }
            let serverError = try await serverErrors.get()
            #expect(serverError?.kind == .frameTooLong)
            #expect(serverError?.message.contains("1001") == true)
            // The server closed the bad connection: the client sees a clean close or a reset.
            _ = try await badClosed.get()
            // The other connection still works.
            loop.execute { good.value?.send(frame: [9, 9, 9]) }
            let observed2 = try await goodEcho.get()
            #expect(observed2 == [9, 9, 9])
        }
    }

    @Test("a peer vanishing mid-frame closes with a truncated-frame error")
    func peerVanishesMidFrame() async throws {
        try await withLoop { loop in
            let serverClose = Promise<ReactorError?>()
            let port = try await startEchoServer(on: loop) { serverClose.succeed($0) }
            _ = try await connectClient(on: loop, port: port) { connection in
                let bytes = frameBytes(payload(1000))
                connection.writeUnframedForTesting(Array(bytes.prefix(500)))
                connection.close()
            }
            let error = try await serverClose.get()
            #expect(error?.kind == .truncatedFrame)
            #expect(error?.message.contains("496 of 1000") == true)
        }
    }

    @Test("callbacks that capture their connection strongly do not keep it alive after close")
    func noRetainCycle() async throws {
        try await withLoop { loop in
            let port = try await startEchoServer(on: loop)
            final class WeakBox: @unchecked Sendable {
                // Safe: touched on the loop thread only.
                weak var connection: FrameConnection?
            }
            let weak = WeakBox()
            let closed = Promise<Void>()
            loop.execute {
                FrameConnection.connect(loop: loop, host: "127.0.0.1", port: port) { result in
                    guard case .success(let connection) = result else { return }
                    weak.connection = connection
                    // Strong captures on purpose: connection -> closure -> connection.
                    connection.onFrame = { _ in connection.close() }
                    connection.onClose = { _ in
                        _ = connection.remoteAddress
                        closed.succeed(())
                    }
                    connection.onWritabilityChanged = { _ in _ = connection.queuedWriteBytes }
                    connection.send(frame: [1])
                }
            }
            try await closed.get()
            // This runs on a later loop iteration, after the close callback released everything.
            let alive = try await loop.submit { weak.connection != nil }
            #expect(!alive)
        }
    }

    @Test("half-close: the peer's echoes still arrive after we shut down writing")
    func halfClose() async throws {
        try await withLoop { loop in
            let port = try await startEchoServer(on: loop)
            let done = Promise<Int>()
            _ = try await connectClient(on: loop, port: port) { connection in
                let received = LoopBox(0)
                connection.onFrame = { _ in received.value += 1 }
                connection.onClose = { error in
                    #expect(error == nil)
                    done.succeed(received.value)
                }
                for _ in 0..<100 { connection.send(frame: payload(1000)) }
                connection.shutdownWrite()
                connection.send(frame: [1])  // dropped: writing was shut down
            }
            let observed3 = try await done.get()
            #expect(observed3 == 100)
        }
    }

    @Test("back-pressure: a peer that does not read trips the high-water mark, then the hard bound")
    func backPressure() async throws {
        try await withLoop { loop in
            // A server that accepts and never reads.
            let serverPort = try await loop.submit {
                let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { connection in
                    connection.pauseReading()
                }
                return listener.localPort
            }
            let configuration = FrameConnection.Configuration(stream: .init(writeHighWaterMark: 256 << 10, maxQueuedWriteBytes: 8 << 20))
            let writability = LoopBox<[Bool]>([])
            let closed = Promise<ReactorError?>()
            let notWritable = Promise<Int>()
            let client = try await connectClient(on: loop, port: serverPort, configuration: configuration) { connection in
                connection.onWritabilityChanged = { [unowned connection] writable in
                    writability.value.append(writable)
                    if !writable { notWritable.succeed(connection.queuedWriteBytes) }
                }
                connection.onClose = { closed.succeed($0) }
            }
            // Keep sending 64 KiB frames until the writer says stop.
            let chunk = payload(64 << 10)
            let pump = LoopBox<(() -> Void)?>(nil)
            loop.execute {
                pump.value = {
                    guard let connection = client.value else { return }
                    for _ in 0..<16 where connection.isWritable { connection.send(frame: chunk) }
                    if connection.isWritable { loop.execute { pump.value?() } }
                }
                pump.value?()
            }
            let queuedAtMark = try await notWritable.get()
            #expect(queuedAtMark > 256 << 10)
            #expect(queuedAtMark <= (256 << 10) + (64 << 10) + 4)
            // Now ignore the signal and keep sending: the hard bound closes the connection.
            loop.execute {
                pump.value = nil
                for _ in 0..<1000 { client.value?.send(frame: chunk) }
            }
            let error = try await closed.get()
            #expect(error?.kind == .writeQueueOverflow)
            let observed4 = try await loop.submit { writability.value.first }
            #expect(observed4 == false)
        }
    }

    @Test("an idle connection is closed after its idle timeout")
    func idleTimeout() async throws {
        try await withLoop { loop in
            let serverClose = Promise<ReactorError?>()
            var configuration = FrameConnection.Configuration()
            configuration.stream.idleTimeout = .milliseconds(100)
            let port = try await startEchoServer(on: loop, configuration: configuration) {
                serverClose.succeed($0)
            }
            let clock = ContinuousClock()
            let start = clock.now
            _ = try await connectClient(on: loop, port: port) { connection in
                connection.send(frame: [1])
            }
            let error = try await serverClose.get()
            #expect(error?.kind == .idleTimeout)
            #expect(clock.now - start >= .milliseconds(95))
        }
    }

    @Test("pause and resume reading")
    func pauseResume() async throws {
        try await withLoop { loop in
            let port = try await startEchoServer(on: loop)
            let received = Counter()
            let gotAll = Promise<Void>()
            let client = try await connectClient(on: loop, port: port) { connection in
                connection.pauseReading()
                connection.onFrame = { _ in if received.increment() == 10 { gotAll.succeed(()) } }
                for _ in 0..<10 { connection.send(frame: [1, 2]) }
            }
            // Give the echoes time to arrive while paused (they must not be delivered).
            try await loop.submit { }
            try await Task.sleep(for: .milliseconds(100))
            #expect(received.value == 0)
            loop.execute { client.value?.resumeReading() }
            try await gotAll.get()
        }
    }

    @Test("IPv6 loopback listen and connect")
    func ipv6() async throws {
        try await withLoop { loop in
            let port: Int
            do {
                port = try await loop.submit {
                    let listener = try FrameListener(loop: loop, host: "::1", port: 0) { connection in
                        connection.onFrame = { [unowned connection] in connection.send(frame: $0) }
                    }
                    #expect(listener.localAddress.hasPrefix("[::1]:"))
                    return listener.localPort
                }
            } catch let error as ReactorError {
                // No IPv6 on this machine: nothing to test.
                withKnownIssue { Issue.record("IPv6 unavailable: \(error)") }
                return
            }
            let echoed = Promise<[UInt8]>()
            loop.execute {
                FrameConnection.connect(loop: loop, host: "::1", port: port) { result in
                    guard case .success(let connection) = result else { return }
                    #expect(connection.remoteAddress == "[::1]:\(port)")
                    connection.onFrame = { echoed.succeed(Array($0)) }
                    connection.send(frame: [6, 6])
                }
            }
            let observed5 = try await echoed.get()
            #expect(observed5 == [6, 6])
        }
    }
}

/// A decoder in a class, so a closure can carry it.
final class FrameDecoderBox {
    var decoder = FrameDecoder(maxFrameLength: 1 << 20)
}

/// The payload client `client` sends as its `frame`-th frame.
func frameBody(_ client: Int, _ frame: Int) -> [UInt8] {
    payload(1 + (client * 7 + frame) % 200, seed: client * 100 + frame)
}
