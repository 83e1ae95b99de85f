import Reactor

extension FrameConnection {
    /// Connects a long-lived client (a worker, a shard) to its server: retries every `retryInterval`
    /// until the server is up, logging each failed attempt, then hands over the connection, unless the
    /// client began stopping meanwhile (then the connection is closed and `exit(0)` called).
    ///
    /// - Parameters:
    ///   - isStopping: whether the client is stopping, asked when the attempt ends.
    ///   - exit: called with the status when connecting ends without a connection to use.
    static func connectUntilUp(
        loop: EventLoop, host: String, port: Int, configuration: Configuration, tls: TLSContext?, serverName: String?,
        retryInterval: Duration, log: @escaping (String) -> Void, isStopping: @escaping () -> Bool,
        exit: @escaping (Int32) -> Void, connected: @escaping (FrameConnection) -> Void
    ) {
        log("connecting to \(host):\(port)")
        connect(
            loop: loop, host: host, port: port, configuration: configuration, tls: tls, serverName: serverName,
            retryInterval: retryInterval, deadline: nil,
            onAttemptFailed: { error, attempt in
                log("server \(host):\(port) not available (\(error.message)); retrying in \(retryInterval.logText) [attempt \(attempt)]")
            },
            completion: { result in
                switch result {
                case .success(let connection):
                    if isStopping() {
                        connection.closeNow()
                        exit(0)
                    } else {
                        connected(connection)
                    }
                case .failure(let error):
                    // Without a deadline, connecting only fails when the loop is stopping.
                    if !isStopping() { log("could not connect to \(host):\(port): \(error)") }
                    exit(isStopping() ? 0 : 1)
                }
            })
    }
}
