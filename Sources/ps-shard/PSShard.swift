import ArgumentParser
import ParameterServer

/// `ps-shard HOST [PORT] [RETRY_INTERVAL]`: a long-lived shard that holds a range of every sharded session's parameters.
@main
struct PSShard: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps-shard",
        abstract: "A long-lived parameter shard: holds one range of a sharded session's parameters (ps-server --shards M).",
        discussion: """
            Listens for workers on --listen (0.0.0.0 and a free port by default), then connects to the server at \
            HOST:PORT, retrying every RETRY_INTERVAL seconds until it is up, and offers to hold a range. Once the \
            server has M shards it assigns each a range of the parameters with the session's optimiser; shards \
            beyond M wait as spares. Workers connect to every shard with the ticket the server gave them, pull \
            the shard's slice of the weights and push their slice of each update; the shard applies the slices \
            when the server says so. Workers dial the address the server saw this shard connect from, or \
            --advertise HOST when that is not reachable from them (behind NAT, in a container).

            After a session the shard drops its range and waits for the next one (continuous mode) unless --once \
            is given. Ctrl-C (SIGINT) or SIGTERM stops it cleanly; the server then loses the shard and goes back \
            to its last snapshot.

            Example: ps-shard 127.0.0.1 8888 5 --name shard-1 --listen 0.0.0.0:9001
            """)

    @OptionGroup var options: ShardOptions

    func run() throws {
        let (configuration, token) = try options.configuration()
        for warning in token?.warnings ?? [] { print("WARNING: \(warning)") }
        if let token { print("authentication: token from \(token.source)") }
        let host = ShardHost(configuration: configuration)
        let status: Int32
        do {
            status = try host.run()
        } catch {
            throw ValidationError(error.description)
        }
        if status != 0 { throw ExitCode(status) }
    }
}
