extension Duration {
    /// The duration in seconds, as a `Double`, for rates and printing.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

extension Duration {
    /// The duration for a log line: "0.2 s", "5.0 s", "30 s".
    var logText: String {
        "\(SummaryLine.format(seconds, digits: seconds < 10 ? 1 : 0)) s"
    }
}
