import Glibc
import Reactor
import Testing

/// A port held by a socket that is bound but not listening: a connection to it is refused, and no other
/// test's listener can be given it meanwhile. (A port read back from a closed listener could be: in a
/// parallel run another suite's listener on port 0 once got it, so a connect meant to be refused
/// succeeded, and that suite's listener saw a stranger.)
private final class RefusingPort: Sendable {
    let port: Int
    private let descriptor: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ReactorError(.invalidArgument, operation: "socket", message: "no socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else {
            close(fd)
            throw ReactorError(.invalidArgument, operation: "bind", message: "no port")
        }
        descriptor = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    /// Lets the port go (for a listener of the test's own).
    func release() { close(descriptor) }

    deinit { close(descriptor) }
}

@Suite("Connect with retry", .timeLimit(.minutes(1)))
struct ConnectTests {

    @Test("succeeds once a server appears two seconds later")
    func serverAppearsLater() async throws {
        try await withLoop { loop in
            let reserved = try RefusingPort()
            let port = reserved.port
            let failures = Counter()
            let result = Promise<Result<String, ReactorError>>()
            let clock = ContinuousClock()
            let start = clock.now
            loop.execute {
                FrameConnection.connect(loop: loop, host: "localhost", port: port, retryInterval: .milliseconds(250),
                                        deadline: .now + .seconds(20),
                                        onAttemptFailed: { error, attempt in
                                            #expect(error.code != nil)
                                            #expect(attempt == failures.value + 1)
                                            failures.increment()
                                        }) { outcome in
                    result.succeed(outcome.map { $0.remoteAddress })
                }
                loop.scheduleTimer(after: .seconds(2)) {
                    reserved.release()
                    _ = try? FrameListener(loop: loop, host: "127.0.0.1", port: port) { _ in }
                }
            }
            let address = try await result.get().get()
            #expect(address == "127.0.0.1:\(port)")
            #expect(clock.now - start >= .seconds(2))
            #expect(failures.value >= 4)
        }
    }

    @Test("gives up at its deadline")
    func givesUp() async throws {
        try await withLoop { loop in
            let refusing = try RefusingPort()
            let port = refusing.port
            let failures = Counter()
            let result = Promise<Result<Int, ReactorError>>()
            let clock = ContinuousClock()
            let start = clock.now
            loop.execute {
                FrameConnection.connect(loop: loop, host: "127.0.0.1", port: port, retryInterval: .milliseconds(100),
                                        deadline: .now + .milliseconds(700),
                                        onAttemptFailed: { _, _ in failures.increment() }) { outcome in
                    result.succeed(outcome.map { _ in 0 })
                }
            }
            let outcome = try await result.get()
            let elapsed = clock.now - start
            guard case .failure(let error) = outcome else {
                Issue.record("connected to a port nobody listens on")
                return
            }
            #expect(error.kind == .deadlineExceeded)
            #expect(error.message.contains("connection refused"))
            #expect(elapsed >= .milliseconds(690))
            // Generous: the point is that it gives up (the error above), not how fast a loaded machine is.
            #expect(elapsed < .seconds(10))
            #expect(failures.value >= 3)
            let observed1 = try await loop.submit { loop.openHandleCount }
            #expect(observed1 == 0)
            withExtendedLifetime(refusing) {}
        }
    }

    @Test("an unresolvable host fails each attempt with the resolver's error")
    func badHost() async throws {
        try await withLoop { loop in
            let result = Promise<ReactorError>()
            loop.execute {
                FrameConnection.connect(loop: loop, host: "no-such-host.invalid", port: 1, retryInterval: .milliseconds(50),
                                        deadline: .now + .milliseconds(300)) { outcome in
                    if case .failure(let error) = outcome { result.succeed(error) }
                }
            }
            let error = try await result.get()
            #expect(error.kind == .deadlineExceeded)
        }
    }

    @Test("stopping the loop fails a pending connect with loopStopped")
    func stoppedLoop() async throws {
        let loop = try EventLoop.startOnNewThread(name: "connect-stop")
        let refusing = try RefusingPort()
        let port = refusing.port
        let result = Promise<ReactorError>()
        let firstFailure = Promise<Void>()
        loop.execute {
            FrameConnection.connect(loop: loop, host: "127.0.0.1", port: port, retryInterval: .seconds(60),
                                    onAttemptFailed: { _, _ in firstFailure.succeed(()) }) { outcome in
                if case .failure(let error) = outcome { result.succeed(error) }
            }
        }
        try await firstFailure.get()
        loop.stop()
        try loop.join()
        let observed2 = try await result.get().kind
        #expect(observed2 == .loopStopped)
        withExtendedLifetime(refusing) {}
    }
}
