import ArgumentParser

// Placeholder: replaced by the real benchmark.
struct EchoClientCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "echo", abstract: "Not built yet.")
    func run() throws { throw ValidationError("echo is not built yet") }
}
