import ArgumentParser
import ModelCatalog
import ParameterServer

/// `ps-server`: runs one training session. It waits for workers, trains, evaluates, tells the
/// workers the session is over, prints a summary and exits. Run it again for the next session.
@main
struct PSServer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps-server",
        abstract: "Run one parameter-server training session.",
        discussion: """
            Waits until --workers workers are connected, trains for --epochs epochs, evaluates on the test \
            set after each epoch, tells the workers the session is over and exits 0. Workers that join \
            later get the current weights and work at once; workers that leave cost only their unfinished \
            work units, which go back to the queue. The last line printed is a machine-readable summary of \
            key=value pairs (mode=, workers=, epochs=, updates=, samples=, seconds=, test_accuracy=, \
            staleness_mean=, ...).

            Modes:
              async  every update is applied as it arrives; --staleness-policy decides what a stale one costs
              sync   rounds: one update from every active worker, averaged, applied once
              ssp    stale synchronous parallel: no worker runs more than --max-staleness clocks ahead

            Models: \(ModelCatalog.listing). Each is trained on its family's data (MNIST for mlp and cnn).

            Example: ps-server --mode async --workers 2 --epochs 5
            """)

    @OptionGroup var options: ServerOptions

    func validate() throws {
        do {
            try options.settings().validate(registry: ModelCatalog.registry)
        } catch let error as SettingsError {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        let status: Int32
        do {
            status = try ParameterServerHost(settings: options.settings(), registry: ModelCatalog.registry).run()
        } catch let error as SettingsError {
            // Printed by ArgumentParser as "Error: ..." with exit status 1.
            throw StartupError(error.description)
        }
        if status != 0 { throw ExitCode(status) }
    }
}

/// A failure to start, printed by ArgumentParser as "Error: ..." with exit status 1.
struct StartupError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
