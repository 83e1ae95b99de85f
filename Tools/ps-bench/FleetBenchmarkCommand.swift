import ArgumentParser

// Placeholder: replaced by the real benchmark.
struct FleetBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fleet", abstract: "Not built yet.")
    func run() throws { throw ValidationError("fleet is not built yet") }
}
