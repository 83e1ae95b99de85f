import ArgumentParser

// Placeholder: replaced by the real benchmark.
struct CodecBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "codec", abstract: "Not built yet.")
    func run() throws { throw ValidationError("codec is not built yet") }
}
