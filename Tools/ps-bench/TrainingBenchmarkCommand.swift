import ArgumentParser

// Placeholder: replaced by the real benchmark.
struct TrainingBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "training", abstract: "Not built yet.")
    func run() throws { throw ValidationError("training is not built yet") }
}
