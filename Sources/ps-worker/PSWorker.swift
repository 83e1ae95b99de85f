import ArgumentParser
import ParameterServer

/// `ps-worker HOST [PORT] [RETRY_INTERVAL]`: a long-lived worker that joins every session.
@main
struct PSWorker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps-worker",
        abstract: "A long-lived parameter-server worker that joins every training session.",
        discussion: """
            Connects to the server at HOST:PORT, retrying every RETRY_INTERVAL seconds until it is up, and \
            prints one line per failed attempt. It trains the work units the server hands out, on its own \
            copy of the data of the session's model (MNIST for mlp and cnn). After a session it waits for the next one (continuous mode) unless --once is \
            given. Ctrl-C (SIGINT) or SIGTERM leaves gracefully: the server requeues this worker's units at once.

            Example: ps-worker 127.0.0.1 8888 5
            """)

    @OptionGroup var options: WorkerOptions

    func run() throws {
        let (configuration, token) = try options.configuration()
        for warning in token?.warnings ?? [] { print("WARNING: \(warning)") }
        if let token { print("authentication: token from \(token.source); the server must prove it holds it too") }
        let host = WorkerHost(configuration: configuration, registry: try options.registry(), dataDirectory: options.data)
        (host.metricsPort, host.metricsHost) = (options.metricsPort, options.metricsHost)
        let status: Int32
        do {
            status = try host.run()
        } catch {
            throw ValidationError(error.description)
        }
        if status != 0 { throw ExitCode(status) }
    }
}
