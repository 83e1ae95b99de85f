import ProcessTooling

extension ChildProcess {
    /// Waits until the child has exited, at most `timeout`, waking on SIGCHLD.
    /// - Returns: How it ended, or nil if it still runs after `timeout`.
    func wait(timeout: Duration, ticker: SignalTicker) -> Termination? {
        let deadline = ContinuousClock.now + timeout
        while reap() == nil && ContinuousClock.now < deadline {
            // A SIGINT or SIGTERM arriving here is kept by the ticker for the caller to see.
            ticker.wait(upTo: min(.milliseconds(100), deadline - .now))
        }
        return termination
    }

    /// Seconds from its start to now, or to its reaping once reaped.
    var uptime: Double { ((ended ?? .now) - started).seconds }
}
