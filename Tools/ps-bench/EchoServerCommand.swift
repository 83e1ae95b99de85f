import ArgumentParser
import Reactor

#if canImport(Glibc)
import Glibc
#endif

/// `ps-bench echo-server`: serves the echo protocol (each frame sent back unchanged) on the Reactor,
/// on the main thread, until SIGINT or SIGTERM; over TLS 1.3 with `--tls-cert` and `--tls-key`.
struct EchoServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo-server",
        abstract: "Serve the framed echo protocol on the Reactor until SIGINT or SIGTERM.",
        discussion: "A frame is a 4-byte little-endian length N followed by N bytes; every frame is sent back unchanged."
    )

    @OptionGroup var endpoint: EchoEndpointOptions

    @OptionGroup var tls: ServerTLSOptions

    @Option(help: "The largest frame payload accepted, in bytes.")
    var maxFrameLength = 64 << 20

    func validate() throws {
        guard maxFrameLength > 0 else { throw ValidationError("--max-frame-length must be positive") }
    }

    func run() throws {
        let loop = try EventLoop()
        let configuration = FrameConnection.Configuration(maxFrameLength: maxFrameLength)
        let listener = try FrameListener(loop: loop, host: endpoint.host, port: endpoint.port, configuration: configuration,
                                         tls: try tls.context()) { connection in
            // The connection lives while its socket is open, and onFrame only runs then: an unretained
            // reference avoids a retain cycle, and borrowing it avoids reference counting per frame.
            let unretained = Unmanaged.passUnretained(connection)
            connection.onFrame = { payload in
                unretained._withUnsafeGuaranteedRef { $0.send(frame: payload) }
            }
        }
        let stop = { loop.stop() }
        let interrupt = try loop.watchSignal(SIGINT, stop)
        let terminate = try loop.watchSignal(SIGTERM, stop)
        print("echo-server listening on \(listener.localAddress)\(tls.certificate == nil ? "" : " (TLS 1.3)")")
        fflush(nil)  // flushes stdout, so a script waiting for this line sees it
        try loop.run()
        _ = (interrupt, terminate)
    }
}
