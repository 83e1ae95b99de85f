import ArgumentParser
import Foundation
import ParameterServer
import Reactor

#if canImport(Glibc)
import Glibc
#endif

/// `ps-bench fleet`: a real parameter server under a fleet of workers that push as fast as they can.
///
/// The server (`ParameterServerRuntime`, async mode, staleness policy none, an SGD-with-momentum model
/// of `--parameters` floats) runs in this process on an event loop of its own. The workers run in a
/// child process (this executable again, with the hidden `--clients-port`), all on one event loop:
/// each answers every work unit at once with a prebuilt gradient, so the figures are the server's
/// decode, check and apply path and its memory, not the workers' computation.
///
/// ```
/// ps-bench fleet --workers 64 --parameters 1000 --seconds 5 --runs 3
/// ```
struct FleetBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Measure the parameter server: updates applied per second, floats/s, staleness and memory.",
        discussion: """
            Runs a real parameter server in this process and --workers workers in a child process, which \
            push an update of --parameters floats for every work unit they are given, with no computation. \
            After --warmup seconds it takes --runs consecutive windows of --seconds each and reports the \
            median of each figure over them, the server process's resident memory before start, once \
            every worker has joined and at the end (and its peak), and the CPU both processes used. \
            The workers' process runs with glibc keeping freed memory mapped (GLIBC_TUNABLES), so that \
            it spends its CPU on pushing; the server's process keeps the default allocator. \
            The server's own log lines go to --server-log. The last line of output is a \
            machine-readable summary (key=value pairs).
            """
    )

    @Option(help: "Workers pushing at once (connections to the server).")
    var workers = 4

    @Option(help: "Floats in every update (the model's parameter count; 101770 is the 784-128-10 MLP).")
    var parameters = 101_770

    @Option(help: "How long each measured window lasts, in seconds.")
    var seconds = 5.0

    @Option(help: "Work units each worker may hold at once (the server's and the workers' limit).")
    var unitsAhead = 2

    @Option(help: "How long to run before measuring, in seconds.")
    var warmup = 2.0

    @Option(help: "Measured windows (the median of each figure is reported).")
    var runs = 3

    @Option(help: "Where the server's own log lines go (it logs joins, epochs and leaves).")
    var serverLog = "/dev/null"

    /// Set only in the child process: run the workers against the server on this port.
    @Option(help: .hidden)
    var clientsPort: Int?

    /// Set only in the child process: the process that must stay alive for the workers to go on.
    @Option(help: .hidden)
    var clientsParent: Int32?

    func validate() throws {
        guard (1...1000).contains(workers) else { throw ValidationError("--workers must be within 1...1000") }
        guard (1...(16 << 20)).contains(parameters) else {
            throw ValidationError("--parameters must be within 1...16777216 (an update must fit in a 64 MiB frame)")
        }
        guard seconds > 0, seconds <= 3600 else { throw ValidationError("--seconds must be more than 0 and at most 3600") }
        guard warmup >= 0, warmup <= 3600 else { throw ValidationError("--warmup must be within 0...3600") }
        guard (1...64).contains(unitsAhead) else { throw ValidationError("--units-ahead must be within 1...64") }
        guard (1...100).contains(runs) else { throw ValidationError("--runs must be within 1...100") }
        guard !serverLog.isEmpty else { throw ValidationError("--server-log must name a file (/dev/null to discard)") }
        if let clientsPort, !(1...65535).contains(clientsPort) {
            throw ValidationError("--clients-port must be within 1...65535")
        }
    }

    func run() throws {
        if let clientsPort {
            try FleetClients.run(options: self, port: clientsPort, parent: clientsParent)
            return
        }
        let result = try FleetBenchmark(options: self).run()
        result.report(options: self)
    }

    /// How long the child may live at most: the whole benchmark plus a margin for connecting.
    var clientLifetime: Duration {
        .milliseconds(Int64((warmup + seconds * Double(runs)) * 1000) + 120_000)
    }
}
