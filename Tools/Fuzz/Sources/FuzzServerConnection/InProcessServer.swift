import Foundation
import Learning
import ParameterServer
import Reactor

/// A real `ParameterServerRuntime` on an event loop thread of its own, listening on 127.0.0.1 at a
/// free port, for the whole life of the fuzzing process (two of them: without and with a token).
///
/// The session can never end: a million epochs of 64 samples in units of 8 (each epoch's end only
/// runs ``TinyServerModel``'s instant evaluation). One worker starts training, so an input that says
/// Hello is given work units and may pull and push. Limits are small so that they are reachable:
/// 64 KiB frames and a 1 s handshake.
final class InProcessServer: Sendable {
    let port: Int
    /// Kept for the process's life: the runtime's callbacks hold it only unowned.
    let server: ParameterServerRuntime

    /// The server without a token, started on first use.
    static let shared = InProcessServer(token: nil)
    /// A second server that requires a token, so the authentication exchange is fuzzed too.
    static let authenticating = InProcessServer(token: AuthenticationToken("fuzzing-token-of-32-bytes-length"))

    private init(token: AuthenticationToken?) {
        // Assembled as ps-server assembles a server, with limits small enough to reach.
        var settings = ServerSettings()
        (settings.port, settings.workers, settings.unitsAhead, settings.uncompressed) = (0, 1, 2, true)
        (settings.epochs, settings.batchSize, settings.maxFrameBytes, settings.handshakeTimeout) = (1_000_000, 8, 64 << 10, 1)
        var recipe = settings.recipe(model: ModelConfiguration(family: "tiny"), defaults: ModelTrainingDefaults(),
                                     trainAvailable: 64, testAvailable: 1)
        recipe.sessionID = "fuzz-\(getpid())"
        var configuration: ServerConfiguration
        do throws(SettingsError) {
            configuration = try ServerConfiguration(recipe: recipe, settings: settings, parameterCount: 10)
        } catch {
            fatalError("FuzzServerConnection: \(error)")
        }
        configuration.token = token
        let loop: EventLoop
        do {
            loop = try EventLoop.startOnNewThread(name: "fuzz-server")
        } catch {
            fatalError("FuzzServerConnection: cannot start an event loop: \(error)")
        }
        let server = ParameterServerRuntime(
            configuration: configuration, model: TinyServerModel(), loop: loop, permutation: recipe.permutation)
        // The server must never finish: if it did, every later probe would be refused.
        server.onFinished = { _ in fatalError("FuzzServerConnection: the never-ending session finished") }
        let started = StartResult()
        loop.execute {
            do {
                try server.start()
                started.set(.success(server.port))
            } catch {
                started.set(.failure(error))
            }
        }
        self.server = server
        switch started.wait() {
        case .success(let port): self.port = port
        case .failure(let error): fatalError("FuzzServerConnection: the server did not start: \(error)")
        }
    }
}

/// The outcome of `start()` on the loop thread, handed to the fuzzing thread.
private final class StartResult: @unchecked Sendable {
    // Why @unchecked Sendable is safe: `result` is only touched while holding `condition`.
    private let condition = NSCondition()
    private var result: Result<Int, any Error>?

    func set(_ value: Result<Int, any Error>) {
        condition.lock()
        result = value
        condition.broadcast()
        condition.unlock()
    }

    func wait() -> Result<Int, any Error> {
        condition.lock()
        defer { condition.unlock() }
        while result == nil { condition.wait() }
        return result!
    }
}
