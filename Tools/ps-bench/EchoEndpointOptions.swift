import ArgumentParser

/// The `--host` and `--port` that the echo server listens on and the echo client connects to.
struct EchoEndpointOptions: ParsableArguments {
    @Option(help: "The server's address.")
    var host = "127.0.0.1"

    @Option(help: "The server's port (0 lets the server pick one and print it).")
    var port = 7001

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be within 0...65535") }
    }
}
