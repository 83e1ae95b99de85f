import FoundationEssentials
import Glibc
import Reactor

/// Runs a long-lived shard the way `ps-shard` does: it listens for workers, connects to the server
/// (retrying), holds whatever range each sharded session assigns it, and runs until told to stop.
///
/// ```swift
/// let configuration = ShardConfiguration(host: "127.0.0.1", name: "shard-1")
/// let status = try ShardHost(configuration: configuration).run()
/// ```
public final class ShardHost: Sendable {
    public let configuration: ShardConfiguration
    public let log: @Sendable (String) -> Void

    public init(configuration: ShardConfiguration, log: @escaping @Sendable (String) -> Void = ParameterServerHost.standardOutput) {
        self.configuration = configuration
        self.log = log
    }

    /// Runs the shard on this thread until it stops (Ctrl-C, SIGTERM, or after one session with `once`).
    /// - Returns: the exit status: 0 after a clean stop or session, 1 after an authentication or TLS
    ///   failure (or with `once`, a session the shard ended by refusing the server), 130 after a second Ctrl-C.
    /// - Throws: ``SettingsError`` when the listening address cannot be bound or the loop fails.
    public func run() throws(SettingsError) -> Int32 {
        unblockTerminationSignals()
        if let warning = FileDescriptorLimit.raise(forConnections: configuration.maxConnections) { log(warning) }
        if configuration.tls != nil {
            log("TLS 1.3 to the server, checking its certificate against \(configuration.tlsServerName ?? configuration.host)")
        }
        do {
            let loop = try EventLoop()
            let shard = ShardRuntime(configuration: configuration, loop: loop, log: log)
            let status = ExitStatus()
            shard.onExit = { code in
                status.code = code
                loop.stop()
            }
            let watchers = try loop.watchInterrupts(status: status) { shard.stop(reason: "interrupted") }
            do {
                try shard.start()
            } catch {
                throw SettingsError("cannot listen on \(configuration.listenHost):\(configuration.listenPort): \(error)")
            }
            try loop.run()
            withExtendedLifetime(watchers) {}
            return status.code
        } catch let error as SettingsError {
            throw error
        } catch {
            throw SettingsError("the event loop failed: \(error)")
        }
    }
}
