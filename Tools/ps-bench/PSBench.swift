import ArgumentParser

/// `ps-bench`: Downpour's benchmarks. Each subcommand measures one layer in a release build and
/// prints one line per figure, ending with a single machine-readable summary line.
@main
struct PSBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps-bench",
        abstract: "Benchmarks: echo server and client (plaintext or TLS), TLS handshakes, codec, training, fleet.",
        subcommands: [
            EchoServerCommand.self,
            EchoClientCommand.self,
            HandshakeBenchmarkCommand.self,
            CodecBenchmarkCommand.self,
            TrainingBenchmarkCommand.self,
            FleetBenchmarkCommand.self,
        ]
    )
}
