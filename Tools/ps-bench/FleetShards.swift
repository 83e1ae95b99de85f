import ArgumentParser
import Foundation
import Locking
import ParameterServer
import Reactor

#if canImport(Glibc)
import Glibc
#endif

/// The `ShardRuntime`s of `ps-bench fleet --shards M`, in this process: each on an event loop thread of
/// its own (`fleet-shard-I`), listening on 127.0.0.1 (an ephemeral port) and connecting to the
/// in-process server, as `ps-shard 127.0.0.1 PORT --listen 127.0.0.1:0` would.
///
/// - Warning: Call from the main thread; each shard is touched only on its own loop, through
///   `EventLoop.execute`.
final class FleetShards {
    private let loops: [EventLoop]
    private let runtimes: [ShardRuntime]

    /// What one shard has done at one moment, read on its loop thread.
    struct Figures: Sendable {
        /// Its range's version: the updates it has applied (the session starts at version 0 and a
        /// benchmark never goes back to a snapshot).
        var version: UInt64
        /// CPU time of its loop thread, in seconds.
        var cpuSeconds: Double
        var workers: Int
    }

    /// Starts `count` shards that connect to the server at 127.0.0.1:`serverPort`.
    init(count: Int, serverPort: Int, log: @escaping @Sendable (String) -> Void) throws {
        var loops: [EventLoop] = []
        var runtimes: [ShardRuntime] = []
        do {
            for index in 0..<count {
                let loop = try EventLoop.startOnNewThread(name: "fleet-shard-\(index)")
                loops.append(loop)
                var configuration = ShardConfiguration(
                    host: "127.0.0.1", port: serverPort, retryInterval: .milliseconds(100), name: "fleet-shard-\(index)")
                (configuration.listenHost, configuration.listenPort, configuration.advertisedHost) = ("127.0.0.1", 0, "127.0.0.1")
                // As the server's heartbeat timeout for its workers: a loop starved on a busy machine
                // must not end the session mid-measurement.
                configuration.serverSilenceLimit = nil
                configuration.handshakeTimeout = .seconds(60)
                let shard = ShardRuntime(configuration: configuration, loop: loop) { line in log("[shard \(index)] \(line)") }
                runtimes.append(shard)
                try Self.onLoop(loop) { try shard.start() }
            }
        } catch {
            Self.stop(loops)
            withExtendedLifetime(runtimes) {}
            throw error
        }
        self.loops = loops
        self.runtimes = runtimes
    }

    /// Every shard's figures now, in index order.
    func figures() throws -> [Figures] {
        try zip(loops, runtimes).map { loop, shard in
            try Self.onLoop(loop) { () -> Figures in
                Figures(version: shard.version ?? 0, cpuSeconds: threadCPUSeconds(), workers: shard.joinedWorkers)
            }
        }
    }

    /// Stops every shard's loop and waits for it.
    func stop() {
        Self.stop(loops)
        // The shards' callbacks hold them unowned: they must outlive their loops.
        withExtendedLifetime(runtimes) {}
    }

    private static func stop(_ loops: [EventLoop]) {
        for loop in loops { loop.stop() }
        for loop in loops { try? loop.join() }
    }

    /// Runs `body` on `loop` and waits for its result.
    static func onLoop<T: Sendable>(_ loop: EventLoop, _ body: @escaping @Sendable () throws -> T) throws -> T {
        let result = Locked<Result<T, any Error>?>(nil)
        let ready = DispatchSemaphore(value: 0)
        loop.execute {
            result.withLock { $0 = Result { try body() } }
            ready.signal()
        }
        guard ready.wait(timeout: .now() + 30) == .success, let value = result.withLock({ $0 }) else {
            throw ValidationError("fleet: a shard's event loop did not answer within 30 s")
        }
        return try value.get()
    }
}

/// The CPU time of the calling thread, in seconds.
func threadCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}
