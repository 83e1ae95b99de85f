import ArgumentParser

// Placeholder: replaced by the real benchmark.
struct EchoServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "echo-server", abstract: "Not built yet.")
    func run() throws { throw ValidationError("echo-server is not built yet") }
}
