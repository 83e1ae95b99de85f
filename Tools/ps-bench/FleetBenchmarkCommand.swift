import ArgumentParser
import Foundation
import ParameterServer
import Reactor
import TensorEncoding

#if canImport(Glibc)
import Glibc
#endif

/// `ps-bench fleet`: a real parameter server under a fleet of workers that push as fast as they can.
///
/// The server (`ParameterServerRuntime`, async mode, staleness policy none, an SGD-with-momentum model
/// of `--parameters` floats) runs in this process on an event loop of its own, with ps-server's
/// exchange: by default 16 local steps of 32 samples, sign pushes and q8 weights; `--uncompressed` is the exchange
/// before encodings (one step per push, fp32 both ways). The workers run in a child process (this
/// executable again, with the hidden `--clients-port`), all on one event loop: each offers its
/// encodings, prebuilds one push in the negotiated encoding after the Welcome and answers every work
/// unit at once with it, so the figures are the server's decode, check and apply path and its memory,
/// not the workers' computation.
///
/// ```
/// ps-bench fleet --workers 4 --parameters 407050 --seconds 5 --runs 5
/// ps-bench fleet --workers 64 --parameters 1000 --seconds 5 --runs 3 --uncompressed --batch-size 1
/// ps-bench fleet --workers 4 --parameters 407050 --shards 2
/// ```
///
/// With `--shards M` the server keeps the session and M `ShardRuntime`s in this process, each on an
/// event loop thread of its own, hold the parameters (Schemas/Messages/README.md, "Shards"); the
/// workers push each shard its slice, wait for every `SliceReceived`, then push the server a staged
/// push. Updates count once every shard has applied them.
struct FleetBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Measure the parameter server: updates and samples applied per second, floats/s, staleness and memory.",
        discussion: """
            Runs a real parameter server in this process and --workers workers in a child process, which \
            push an update of --parameters floats for every work unit they are given, with no computation. \
            The exchange is ps-server's: --local-steps (default 16: each push is a delta of --batch-size x H \
            samples, 32 x 16; 1 pushes gradients, of 64), --push-encoding (default sign) and --pull-encoding (default q8), \
            or --uncompressed (H = 1, fp32 both ways) as before encodings. The workers offer \
            --client-encodings and push a prebuilt vector in the encoding the server chose. \
            After --warmup seconds it takes --runs consecutive windows of --seconds each and reports the \
            median of each figure over them, the server process's resident memory before start, once \
            every worker has joined and at the end (and its peak), and the CPU both processes used. \
            Both processes run with glibc's default allocator: the event loop keeps the buffers of large \
            writes for the next ones, so a 1.6 MB push costs no fresh mapping. \
            With --shards M the parameters are held by M shards (ShardRuntime, each on an event loop thread \
            of its own in this process, listening on 127.0.0.1), the server keeps the session, and the \
            workers push every shard its slice of each update and the server a staged push; an update \
            counts once every shard has applied it (the lowest shard's version), and each shard's applied \
            updates and CPU are reported. \
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

    // MARK: The exchange (as ps-server's options)

    @Option(help: "async, sync or ssp: in sync mode every worker's push joins a round whose average is applied once all have pushed.")
    var mode: TrainingMode = .async

    @Option(help: "Training samples per local step: a unit holds --batch-size x --local-steps sample indices, and a push counts that many samples. Default 32 with local steps, 64 without, as ps-server's.")
    var batchSize: Int?

    @Option(help: "Local steps per push (H): 1 pushes gradients; more pushes deltas. Default 16; 1 with --uncompressed.")
    var localSteps: Int?

    @Flag(help: "The exchange before encodings: --local-steps 1 --push-encoding fp32 --pull-encoding fp32 unless given.")
    var uncompressed = false

    @Option(help: ArgumentHelp("How workers push: fp32, fp16, bf16, q8[:BLOCK], sign[:BLOCK] or topk:FRACTION. Default sign; fp32 with --uncompressed.", valueName: "encoding"))
    var pushEncoding: String?

    @Option(help: ArgumentHelp("How weights are sent: fp32, fp16, bf16 or q8[:BLOCK]. Default q8; fp32 with --uncompressed.", valueName: "encoding"))
    var pullEncoding: String?

    @Option(help: ArgumentHelp("Encodings the workers offer in their Hello, comma-separated (default: all that TensorEncoding knows, fp16,bf16,q8,topk,sign, and delta, as ps-worker offers them); none offers nothing, as a worker before encodings.", valueName: "names"))
    var clientEncodings: String?

    @Flag(help: "Workers also send a Pull (their newest version) for every unit, as ps-worker does in async mode; the weights they get are not decoded.")
    var pullEveryUnit = false

    // TLS 1.3 on every connection: the server's certificate (valid for localhost, or for
    // --tls-server-name) and the CA the workers check it against, given together.
    @OptionGroup var serverTLS: ServerTLSOptions
    @OptionGroup var clientTLS: ClientTLSOptions

    @Option(help: "Shards holding the parameters (ps-server --shards), each on a thread of its own in this process; 0: the server holds them.")
    var shards = 0

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
        guard (1...65536).contains(batch) else { throw ValidationError("--batch-size must be within 1...65536") }
        guard (1...1024).contains(steps) else { throw ValidationError("--local-steps must be within 1...1024") }
        _ = try encodings()
        guard (serverTLS.certificate == nil) == (clientTLS.caPath == nil) else {
            throw ValidationError("fleet: --tls-cert, --tls-key and --tls-ca go together")
        }
        guard (0...64).contains(shards), shards <= parameters else {
            throw ValidationError("--shards must be within 0...64 and at most --parameters")
        }
        guard shards == 0 || serverTLS.certificate == nil else {
            throw ValidationError("fleet: --shards with TLS is not supported (the shards' connections would need certificates too)")
        }
        let known = TensorEncoding.wireNames + [TensorEncoding.deltaCapability, ShardMap.capability]
        for name in offeredEncodings where !known.contains(name) {
            throw ValidationError("--client-encodings: unknown encoding \"\(name)\" (known: \(known.joined(separator: ", ")), or none)")
        }
    }

    /// H, the local steps per push.
    var steps: Int { localSteps ?? (uncompressed ? 1 : ServerSettings.defaultLocalSteps) }

    /// Samples per local step.
    var batch: Int { batchSize ?? ServerSettings.defaultBatchSize(localSteps: steps, uncompressed: uncompressed) }

    /// Samples behind one full unit.
    var samplesPerUnit: Int { batch * steps }

    /// The server's push and pull encodings, as ps-server resolves them.
    func encodings() throws -> (push: TensorEncoding, pull: TensorEncoding) {
        let push: TensorEncoding
        let pull: TensorEncoding
        do throws(EncodingChoiceError) {
            push = try TensorEncoding(choice: pushEncoding ?? (uncompressed ? "fp32" : "sign"), count: parameters)
            pull = try TensorEncoding(choice: pullEncoding ?? (uncompressed ? "fp32" : "q8"), count: parameters)
        } catch {
            throw ValidationError("fleet: \(error)")
        }
        switch pull {
        case .topK, .sign: throw ValidationError("--pull-encoding \(pull.name): weights are always whole (fp32, fp16, bf16 or q8)")
        default: return (push, pull)
        }
    }

    /// The wire names the workers list in `Capabilities.encodings`.
    var offeredEncodings: [String] {
        guard let clientEncodings else { return TensorEncoding.wireNames + [TensorEncoding.deltaCapability] }
        if clientEncodings == "none" || clientEncodings.isEmpty { return [] }
        return clientEncodings.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
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

extension TrainingMode: ExpressibleByArgument {}
