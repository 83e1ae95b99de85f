@testable import Reactor
import Testing

/// Per-connection frame limits, shared frame buffer budgets and the refusal hook, over loopback.
@Suite("FrameConnection limits, budgets and refusals", .timeLimit(.minutes(2)))
struct FrameConnectionLimitTests {
    /// What the test servers answer a refused frame with.
    static let refusedAnswer = Array("refused".utf8)

    @Test("the frame limit can be raised and lowered at runtime, from inside onFrame")
    func limitChangesAtRuntime() async throws {
        try await withLoop { loop in
            let serverClose = Promise<ReactorError?>()
            let port = try await loop.submit {
                let listener = try FrameListener(loop: loop, host: "127.0.0.1", port: 0,
                                                 configuration: .init(maxFrameLength: 100)) { connection in
                    // A one-byte frame 1 raises the limit, 2 lowers it; anything else is answered
                    // with its length.
                    connection.onFrame = { [unowned connection] payload in
                        switch payload.count == 1 ? payload[0] : 0 {
                        case 1: connection.maxFrameLength = 1000
                        case 2: connection.maxFrameLength = 100
                        default: break
                        }
                        connection.send(frame: payload.count == 1 ? Array(payload) : littleEndian(payload.count))
                    }
                    connection.onFrameRefused = { [unowned connection] _ in connection.send(frame: Self.refusedAnswer) }
                    connection.onClose = { serverClose.succeed($0) }
                }
                return listener.localPort
            }
            let answers = LoopBox<[[UInt8]]>([])
            let clientClose = Promise<[[UInt8]]>()
            _ = try await connectClient(on: loop, port: port) { connection in
                connection.onFrame = { [unowned connection] answer in
                    answers.value.append(Array(answer))
                    if answers.value.count == 2 {
                        // Lowered again: the same 101 bytes that passed under the raised limit are refused.
                        connection.writeUnframedForTesting(frameBytes([2]) + frameBytes(payload(101)))
                    }
                }
                connection.onClose = { _ in clientClose.succeed(answers.value) }
                // Raise and a 500-byte frame in one write: the new limit governs the frame read after it.
                connection.writeUnframedForTesting(frameBytes([1]) + frameBytes(payload(500)))
            }
            let received = try await clientClose.get()
            #expect(received == [[1], littleEndian(500), [2], Self.refusedAnswer])
            let error = try #require(try await serverClose.get())
            #expect(error.kind == .frameTooLong)
            #expect(error.message.contains("length prefix 101 exceeds the maximum frame length 100"))
            #expect(error.operation.hasPrefix("read from 127.0.0.1:"))
        }
    }

    @Test("a budget shared by several connections refuses the one that would pass it; the others carry on",
          arguments: [false, true])
    func sharedBudget(echo: Bool) async throws {
        try await withLoop { loop in
            let frameLength = 40_000
            let budget = LoopBox<FrameBufferBudget?>(nil)
            let refusal = Promise<ReactorError>()
            let reservedAtRefusal = Promise<Int>()
            let port = try await loop.submit {
                let shared = FrameBufferBudget(limit: 100_000)
                budget.value = shared
                let listener = try FrameListener(loop: loop, host: "127.0.0.1", port: 0) { connection in
                    connection.bufferBudget = shared
                    connection.onFrame = { [unowned connection] payload in
                        // Echoing hands the gathered buffer to the write queue; answering with the length
                        // lets the decoder recycle it. Both must give the reservation back.
                        if echo {
                            connection.send(frame: payload)
                        } else {
                            connection.send(frame: littleEndian(payload.count))
                        }
                    }
                    connection.onFrameRefused = { [unowned connection] error in
                        reservedAtRefusal.succeed(shared.reserved)
                        refusal.succeed(error)
                        connection.send(frame: Self.refusedAnswer)
                    }
                }
                return listener.localPort
            }
            let body = payload(frameLength)
            let bytes = frameBytes(body)
            let answers = (0..<3).map { _ in LoopBox<[[UInt8]]>([]) }
            let answered = (0..<3).map { _ in Promise<Void>() }
            let firstClosed = Promise<Int>()
            var clients: [LoopBox<FrameConnection?>] = []
            // Each client starts a 40,000-byte frame and holds back the rest, so whichever of them the
            // server reads third finds 80,000 of the 100,000 bytes reserved.
            for index in 0..<3 {
                clients.append(try await connectClient(on: loop, port: port) { connection in
                    connection.onFrame = { payload in
                        answers[index].value.append(Array(payload))
                        answered[index].succeed(())
                    }
                    connection.onClose = { _ in firstClosed.succeed(index) }
                    connection.writeUnframedForTesting(Array(bytes[..<1000]))
                })
            }
            let refused = try await firstClosed.get()
            let error = try await refusal.get()
            #expect(error.kind == .frameBudgetExceeded)
            #expect(error.message.contains("length prefix 40000 "))
            #expect(error.message.contains("80000 of 100000 reserved"))
            let observed = try await reservedAtRefusal.get()
            #expect(observed == 2 * frameLength)
            let refusedAnswers = try await loop.submit { answers[refused].value }
            #expect(refusedAnswers == [Self.refusedAnswer])

            let others = (0..<3).filter { $0 != refused }
            let senders = clients
            loop.execute {
                for index in others { senders[index].value?.writeUnframedForTesting(Array(bytes[1000...])) }
            }
            for index in others { try await answered[index].get() }
            for index in others {
                let received = try await loop.submit { answers[index].value }
                #expect(received == [echo ? body : littleEndian(frameLength)])
            }
            let reserved = try await loop.submit { budget.value?.reserved }
            #expect(reserved == 0)
        }
    }

    @Test("a reservation returns to the budget when its connection closes mid-frame")
    func reservationReleasedOnClose() async throws {
        try await withLoop { loop in
            let frameLength = 40_000
            // Each server-side close reports its error and what the budget held at that moment.
            let budgetRefusal = Promise<Int>()
            let truncated = Promise<Int>()
            // Kept, as an application keeps its peers, so that nothing is freed merely by going away.
            let accepted = LoopBox<[FrameConnection]>([])
            let port = try await loop.submit {
                let budget = FrameBufferBudget(limit: frameLength)
                let listener = try FrameListener(loop: loop, host: "127.0.0.1", port: 0) { connection in
                    accepted.value.append(connection)
                    connection.bufferBudget = budget
                    connection.onFrame = { [unowned connection] payload in connection.send(frame: payload) }
                    connection.onClose = { error in
                        switch error?.kind {
                        case .frameBudgetExceeded?: budgetRefusal.succeed(budget.reserved)
                        case .truncatedFrame?: truncated.succeed(budget.reserved)
                        default: break
                        }
                    }
                }
                return listener.localPort
            }
            let bytes = frameBytes(payload(frameLength))

            // A: a small frame, then the start of a big one, in one write; the small one's echo shows
            // the server has read the big one's length prefix too.
            let holderAck = Promise<Void>()
            let holder = try await connectClient(on: loop, port: port) { connection in
                connection.onFrame = { _ in holderAck.succeed(()) }
                connection.writeUnframedForTesting(frameBytes([7]) + Array(bytes[..<1000]))
            }
            try await holderAck.get()

            // B: the budget is spent, so its frame is refused, at once as there is no hook.
            _ = try await connectClient(on: loop, port: port) { connection in
                connection.writeUnframedForTesting(Array(bytes[..<1000]))
            }
            let heldByA = try await budgetRefusal.get()
            #expect(heldByA == frameLength)

            // A goes away mid-frame: by the time onClose runs its reservation is back.
            loop.execute { holder.value?.close() }
            let afterClose = try await truncated.get()
            #expect(afterClose == 0)

            // C: the whole budget is available again (gathered, as the rest follows the ack).
            let echoed = Promise<[UInt8]>()
            _ = try await connectClient(on: loop, port: port) { connection in
                connection.onFrame = { [unowned connection] answer in
                    if answer.count == 1 {
                        connection.writeUnframedForTesting(Array(bytes[1000...]))
                    } else {
                        echoed.succeed(Array(answer))
                    }
                }
                connection.writeUnframedForTesting(frameBytes([7]) + Array(bytes[..<1000]))
            }
            let echo = try await echoed.get()
            #expect(echo == payload(frameLength))
            try await loop.submit { accepted.value.removeAll() }
        }
    }

    @Test("the refusal hook's last frame reaches the peer after those queued before it; onClose gets the same error")
    func refusalHookAnswers() async throws {
        try await withLoop { loop in
            let hookCalls = Counter()
            let closeCalls = Counter()
            let hookError = Promise<ReactorError>()
            let closeError = Promise<ReactorError?>()
            let port = try await loop.submit {
                let listener = try FrameListener(loop: loop, host: "127.0.0.1", port: 0,
                                                 configuration: .init(maxFrameLength: 1000)) { connection in
                    connection.onFrame = { [unowned connection] payload in connection.send(frame: payload) }
                    connection.onFrameRefused = { [unowned connection] error in
                        hookCalls.increment()
                        hookError.succeed(error)
                        connection.send(frame: Array("refused: \(error.message)".utf8))
                    }
                    connection.onClose = { error in
                        closeCalls.increment()
                        closeError.succeed(error)
                    }
                }
                return listener.localPort
            }
            let clientClosed = Promise<[String]>()
            let clientError = Promise<ReactorError?>()
            _ = try await connectClient(on: loop, port: port) { connection in
                let received = LoopBox<[String]>([])
                connection.onFrame = { received.value.append(String(decoding: $0, as: UTF8.self)) }
                connection.onClose = { error in
                    clientError.succeed(error)
                    clientClosed.succeed(received.value)
                }
                // A frame to echo, then a length prefix one byte over the limit, in one write.
                connection.writeUnframedForTesting(frameBytes(Array("hello".utf8)) + Array(frameBytes(payload(1001)).prefix(4)))
            }
            let received = try await clientClosed.get()
            #expect(received == ["hello", "refused: length prefix 1001 exceeds the maximum frame length 1000"])
            // The server closed with a FIN after writing, not a reset.
            let clientSaw = try await clientError.get()
            #expect(clientSaw == nil)
            let fromHook = try await hookError.get()
            let fromClose = try await closeError.get()
            #expect(fromClose == fromHook)
            #expect(fromHook.kind == .frameTooLong)
            #expect(fromHook.operation.hasPrefix("read from 127.0.0.1:"))
            #expect(hookCalls.value == 1)
            #expect(closeCalls.value == 1)
        }
    }

    @Test("a refusal hook may close at once; onClose still reports the refusal")
    func refusalHookClosesNow() async throws {
        try await withLoop { loop in
            let closeError = Promise<ReactorError?>()
            let port = try await loop.submit {
                let listener = try FrameListener(loop: loop, host: "127.0.0.1", port: 0,
                                                 configuration: .init(maxFrameLength: 10)) { connection in
                    connection.onFrame = { _ in }
                    connection.onFrameRefused = { [unowned connection] _ in connection.closeNow() }
                    connection.onClose = { closeError.succeed($0) }
                }
                return listener.localPort
            }
            _ = try await connectClient(on: loop, port: port) { connection in
                connection.writeUnframedForTesting(Array(frameBytes(payload(11)).prefix(4)))
            }
            let error = try await closeError.get()
            #expect(error?.kind == .frameTooLong)
        }
    }

    @Test("after a refusal, a peer that never reads cannot hold the connection open past the refusal linger")
    func refusalLingerIsBounded() async throws {
        try await withLoop { loop in
            let linger = Duration.milliseconds(200)
            let clock = ContinuousClock()
            let refusedAt = LoopBox<ContinuousClock.Instant?>(nil)
            let closed = Promise<ReactorError?>()
            let lingered = Promise<Duration>()
            let configuration = FrameConnection.Configuration(maxFrameLength: 1000, refusalLinger: linger)
            let port = try await loop.submit {
                let listener = try FrameListener(loop: loop, host: "127.0.0.1", port: 0,
                                                 configuration: configuration) { connection in
                    connection.onFrame = { _ in }
                    connection.onFrameRefused = { [unowned connection] _ in
                        refusedAt.value = clock.now
                        // Far more than the kernel's socket buffers take, so the write queue cannot drain.
                        connection.sendFrame(payloadSize: 32 << 20) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
                    }
                    connection.onClose = { error in
                        if let refusedAt = refusedAt.value { lingered.succeed(clock.now - refusedAt) }
                        closed.succeed(error)
                    }
                }
                return listener.localPort
            }
            loop.execute {
                TCPConnection.connect(loop: loop, host: "127.0.0.1", port: port) { result in
                    guard case .success(let connection) = result else {
                        Issue.record("connect failed: \(result)")
                        return
                    }
                    connection.pauseReading()
                    connection.write(Array(frameBytes(payload(1001)).prefix(4)))
                }
            }
            let error = try await closed.get()
            // The refusal is what onClose reports, not the linger that cut the answer short.
            #expect(error?.kind == .frameTooLong)
            let elapsed = try await lingered.get()
            // Timers count from the loop's cached time, which can be up to a millisecond early.
            #expect(elapsed >= linger - .milliseconds(5))
            #expect(elapsed < .seconds(10))
        }
    }

    @Test("close(lingeringAtMost:) writes everything to a reading peer, and gives up on one that never reads",
          arguments: [true, false])
    func closeLingeringAtMost(peerReads: Bool) async throws {
        try await withLoop { loop in
            let serverPort = try await loop.submit {
                let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { connection in
                    if peerReads {
                        connection.onRead = { _ in }
                    } else {
                        connection.pauseReading()
                    }
                }
                return listener.localPort
            }
            let closed = Promise<ReactorError?>()
            _ = try await connectClient(on: loop, port: serverPort) { connection in
                connection.onClose = { closed.succeed($0) }
                connection.sendFrame(payloadSize: 32 << 20) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
                connection.close(lingeringAtMost: peerReads ? .seconds(60) : .milliseconds(100))
            }
            let error = try await closed.get()
            if peerReads {
                #expect(error == nil)
            } else {
                #expect(error?.kind == .lingerTimeout)
                #expect(error?.message.contains("not written within") == true)
            }
        }
    }
}

/// `value` as 4 little-endian bytes.
private func littleEndian(_ value: Int) -> [UInt8] {
    (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
}
