import ArgumentParser
import FoundationEssentials
import Glibc
import Learning
import ModelCatalog
import ParameterServer

/// `ps-worker`'s arguments and flags, turned into the library's `WorkerConfiguration`.
struct WorkerOptions: ParsableArguments {
    @Argument(help: "The server's host name or address.")
    var host: String

    @Argument(help: "The server's port.")
    var port: Int = 8888

    @Argument(help: "Seconds between connection attempts while the server is not up.")
    var retryInterval: Double = 5

    @Option(help: "The data directory, for model families that load data (MNIST's default: Data/mnist, found from the executable, the source or the current directory).")
    var data: String?

    @Option(help: ArgumentHelp("Model families to offer, comma-separated (default: every one this build knows: \(ModelCatalog.registry.names.joined(separator: ", "))); each one's data is loaded at start-up.", valueName: "list"))
    var models: String?

    @Option(help: "OpenBLAS threads for training.")
    var threads = 1

    @Option(help: "Serve this worker's figures at http://METRICS-HOST:PORT/metrics from its event loop, for Prometheus and liveness probes (0 picks a free port, printed at start-up; off by default).")
    var metricsPort: Int?

    @Option(help: "The address --metrics-port listens on (0.0.0.0 for a probe from another host, such as the kubelet).")
    var metricsHost = "127.0.0.1"

    @Flag(help: "Exit after one session instead of waiting for the next.")
    var once = false

    @Option(help: "The name this worker gives the server (default: worker-PID@HOSTNAME).")
    var name: String?

    @Option(help: "Work units to hold at once, so the next is here when one finishes.")
    var unitsAhead = 2

    @Option(help: "Downpour's n_fetch: in async and ssp sessions, start every F-th unit from the server's newest weights and the units between from this worker's own, carried on from the unit before; pulls F times less. (n_push is the server's --local-steps.)")
    var fetchEvery = 1

    @Option(help: "When async and ssp sessions ask for fresh weights: after-push (ask after each push and wait for the answer: the next unit misses fewer updates), prefetch (ask when a unit starts: never idle, one unit staler), or auto: after-push while a pull's round trip stays under a quarter of a unit's training time, else prefetch until it is under a fifth again.")
    var pullTiming = PullTiming.auto

    @Option(help: ArgumentHelp(
        "Read the server's token from this file (a trailing newline is ignored; keep it chmod 600). Without --token-file or --token, the environment variable DOWNPOUR_TOKEN is used if set. With a token, the worker also requires the server to prove it holds it.",
        valueName: "path"))
    var tokenFile: String?

    @Option(help: ArgumentHelp(AuthenticationToken.flagHelp, valueName: "secret"))
    var token: String?

    @Flag(help: "Speak TLS 1.3 to the server, trusting the system's CAs (implied by --tls-ca).")
    var tls = false

    @Option(help: ArgumentHelp("Speak TLS 1.3 and trust only this CA (PEM) for the server's certificate, whose name must match HOST (or --tls-server-name).", valueName: "path"))
    var tlsCa: String?

    @Option(help: ArgumentHelp("The name the server's certificate must carry, when it is not HOST (an address, say).", valueName: "name"))
    var tlsServerName: String?

    @Option(help: ArgumentHelp("Mutual TLS: this worker's certificate chain (PEM), with --tls-key.", valueName: "path"))
    var tlsCert: String?

    @Option(help: ArgumentHelp("The private key (PEM) of --tls-cert.", valueName: "path"))
    var tlsKey: String?

    @Option(help: ArgumentHelp("Encodings to offer the server besides fp32, comma-separated (default: all of fp16, bf16, q8, topk, sign, delta: weights as what changed since the version held, and shards: sessions whose parameters are on ps-shard processes); \"fp32\" offers none, as a worker written before encodings.", valueName: "list"))
    var encodings: String?

    @Option(help: ArgumentHelp("Optimisers to offer for local steps besides Nesterov SGD, comma-separated (default: adam); \"nesterov\" offers none, as a worker written before local Adam. The server chooses (ps-server --local-optimizer).", valueName: "list"))
    var localOptimizers: String?

    @Option(help: ArgumentHelp(
        "Faults to inject, as key=value pairs (repeatable or comma-separated): delay=50ms, jitter=20ms, slowdown=3, crash-after=30s, drop-connection=0.01, seed=7.",
        valueName: "faults"))
    var inject: [String] = []

    func validate() throws {
        guard !host.isEmpty else { throw ValidationError("HOST must not be empty") }
        guard (1...65535).contains(port) else { throw ValidationError("PORT must be 1...65535, got \(port)") }
        guard retryInterval > 0, retryInterval.isFinite else { throw ValidationError("RETRY_INTERVAL must be a positive number of seconds") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard unitsAhead >= 1 else { throw ValidationError("--units-ahead must be at least 1") }
        guard fetchEvery >= 1 else { throw ValidationError("--fetch-every must be at least 1") }
        do {
            _ = try FaultInjection(parsing: inject)
        } catch {
            throw ValidationError("--inject: \(error)")
        }
        _ = try resolvedToken()
        _ = try offeredEncodings()
        _ = try offeredLocalOptimizers()
        _ = try registry()
        if let metricsPort, !(0...65535).contains(metricsPort) { throw ValidationError("--metrics-port must be 0...65535") }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard usesTLS || (tlsCert == nil && tlsServerName == nil) else {
            throw ValidationError("--tls-cert and --tls-server-name need TLS: add --tls or --tls-ca")
        }
    }

    /// Whether the worker speaks TLS.
    var usesTLS: Bool { tls || tlsCa != nil }


    /// The families --models names, from the model catalogue.
    func registry() throws -> ModelRegistry {
        guard let models else { return ModelCatalog.registry }
        let names = models.split(separator: ",").map { $0.trimmingWhitespace() }
        do {
            return ModelRegistry(try names.map { name throws(ModelConfigurationError) in try ModelCatalog.registry.family(named: name) })
        } catch {
            throw ValidationError("--models: \(error.description)")
        }
    }

    /// The encodings --encodings names, checked against those this worker knows.
    func offeredEncodings() throws -> [String] {
        let known = WorkerConfiguration.defaultEncodings
        guard let encodings else { return known }
        let names = encodings.split(separator: ",").map { $0.trimmingWhitespace() }.filter { $0 != "fp32" }
        for name in names where !known.contains(name) {
            throw ValidationError("--encodings: unknown encoding \"\(name)\" (known: fp32, \(known.joined(separator: ", ")))")
        }
        return names
    }

    /// The local optimisers --local-optimizers names, checked against those this worker knows.
    func offeredLocalOptimizers() throws -> [String] {
        let known = WorkerConfiguration.defaultLocalOptimizers
        guard let localOptimizers else { return known }
        let names = localOptimizers.split(separator: ",").map { $0.trimmingWhitespace() }
            .filter { $0 != LocalOptimizerKind.nesterov.rawValue }
        for name in names where !known.contains(name) {
            throw ValidationError("--local-optimizers: unknown optimiser \"\(name)\" (known: nesterov, \(known.joined(separator: ", ")))")
        }
        return names
    }

    /// The token from --token, --token-file or the environment, if any.
    func resolvedToken() throws -> AuthenticationToken.Resolution? {
        do {
            return try AuthenticationToken.resolve(flag: token, file: tokenFile)
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// The worker's configuration from these flags, and the token's source for the log.
    func configuration() throws -> (WorkerConfiguration, AuthenticationToken.Resolution?) {
        let workerName = name ?? "worker-\(getpid())@\(ProcessInfo.processInfo.hostName)"
        var configuration = WorkerConfiguration(
            host: host, port: port, retryInterval: .milliseconds(Int(retryInterval * 1000)), name: workerName)
        configuration.threads = threads
        configuration.once = once
        configuration.unitsAhead = unitsAhead
        configuration.fetchEvery = fetchEvery
        configuration.pullTiming = pullTiming
        configuration.faults = try FaultInjection(parsing: inject)
        configuration.encodings = try offeredEncodings()
        configuration.localOptimizers = try offeredLocalOptimizers()
        let token = try resolvedToken()
        configuration.token = token?.token
        if usesTLS {
            do {
                try configuration.enableTLS(trustedCAPath: tlsCa, certificatePath: tlsCert, privateKeyPath: tlsKey, serverName: tlsServerName)
            } catch {
                throw ValidationError(error.description)
            }
        }
        return (configuration, token)
    }
}

extension PullTiming: ExpressibleByArgument {}
