@testable import Reactor
import Locking
import Synchronization
import Testing

/// A value that arrives once, from any thread, awaited with a time limit.
final class Promise<Value: Sendable>: Sendable {
    private struct State {
        var value: Value?
        var waiters: [Int: CheckedContinuation<Value?, Never>] = [:]
        var nextWaiter = 0
    }

    private let state = Locked(State())

    init() {}

    /// Fulfils the promise; later calls are ignored.
    func succeed(_ value: Value) {
        let waiters = state.withLock { state -> [CheckedContinuation<Value?, Never>] in
            guard state.value == nil else { return [] }
            state.value = value
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: value) }
    }

    var isFulfilled: Bool { state.withLock { $0.value != nil } }

    /// Waits for the value, recording an issue (and throwing) after `timeout`.
    func get(timeout: Duration = .seconds(30), sourceLocation: SourceLocation = #_sourceLocation) async throws -> Value {
        let value: Value? = await withCheckedContinuation { continuation in
            let (ready, id) = state.withLock { state -> (Value?, Int) in
                if let value = state.value { return (value, -1) }
                let id = state.nextWaiter
                state.nextWaiter += 1
                state.waiters[id] = continuation
                return (nil, id)
            }
            if let ready {
                continuation.resume(returning: ready)
                return
            }
            Task {
                try? await Task.sleep(for: timeout)
                let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
                waiter?.resume(returning: nil)
            }
        }
        guard let value else {
            Issue.record("timed out after \(timeout)", sourceLocation: sourceLocation)
            throw TimedOut()
        }
        return value
    }
}

struct TimedOut: Error {}

/// A counter shared between the loop thread and the test.
final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    init() {}
    @discardableResult
    func increment(by amount: Int = 1) -> Int { count.add(amount, ordering: .relaxed).newValue }
    var value: Int { count.load(ordering: .relaxed) }
}

/// Carries a loop-bound value through `@Sendable` closures.
final class LoopBox<Value>: @unchecked Sendable {
    // Safe because the tests touch `value` on one event loop's thread only.
    var value: Value
    init(_ value: Value) { self.value = value }
}

extension EventLoop {
    /// Runs `body` on the loop and returns its result to the awaiting test.
    func submit<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            execute { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// Runs `body` with a loop on its own thread, then stops the loop and checks that it closed cleanly.
func withLoop<T>(_ body: (EventLoop) async throws -> T) async throws -> T {
    let loop = try EventLoop.startOnNewThread(name: "test-loop")
    let result: T
    do {
        result = try await body(loop)
    } catch {
        loop.stop()
        try? loop.join()
        throw error
    }
    loop.stop()
    try loop.join()
    return result
}

/// Frame bytes: a 4-byte little-endian length, then the payload.
func frameBytes(_ payload: [UInt8]) -> [UInt8] {
    let length = UInt32(payload.count)
    return [UInt8(length & 0xff), UInt8(length >> 8 & 0xff), UInt8(length >> 16 & 0xff), UInt8(length >> 24)] + payload
}

/// A deterministic payload of `count` bytes.
func payload(_ count: Int, seed: Int = 0) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed &* 7 &+ $0 >> 8) }
}

/// Starts a framed echo server on `loop` (speaking TLS with `tls`), returning its port.
func startEchoServer(on loop: EventLoop, configuration: FrameConnection.Configuration = .init(), tls: TLSContext? = nil,
                     onClose: (@Sendable (ReactorError?) -> Void)? = nil) async throws -> Int {
    try await loop.submit {
        let listener = try FrameListener(loop: loop, host: "127.0.0.1", port: 0, configuration: configuration,
                                         tls: tls) { connection in
            connection.onFrame = { [unowned connection] payload in connection.send(frame: payload) }
            connection.onClose = { error in onClose?(error) }
        }
        return listener.localPort
    }
}

/// Connects a framed client (speaking TLS with `tls`) and returns it boxed for use on the loop.
func connectClient(on loop: EventLoop, port: Int, configuration: FrameConnection.Configuration = .init(),
                   tls: TLSContext? = nil, serverName: String? = nil,
                   setUp: @escaping @Sendable (FrameConnection) -> Void) async throws -> LoopBox<FrameConnection?> {
    let connected = Promise<Result<LoopBox<FrameConnection?>, ReactorError>>()
    loop.execute {
        FrameConnection.connect(loop: loop, host: "127.0.0.1", port: port, configuration: configuration, tls: tls,
                                serverName: serverName, retryInterval: .milliseconds(50),
                                deadline: .now + .seconds(10)) { result in
            switch result {
            case .success(let connection):
                setUp(connection)
                connected.succeed(.success(LoopBox(connection)))
            case .failure(let error):
                connected.succeed(.failure(error))
            }
        }
    }
    return try await connected.get().get()
}
