import FoundationEssentials
import Glibc
import Learning
import Reactor

/// Runs a long-lived worker the way `ps-worker` does: it loads the data of every family in its
/// registry, connects (retrying), builds whatever model each session asks for, on that family's data,
/// and trains until told to stop.
///
/// ```swift
/// let configuration = WorkerConfiguration(host: "127.0.0.1", name: "worker-1")
/// let status = try WorkerHost(configuration: configuration, registry: registry).run()
/// ```
public final class WorkerHost: @unchecked Sendable {
    // Why @unchecked Sendable is safe: `trainingSets` is touched only on the loop thread (the model
    // factory runs there, when a Welcome arrives).
    public let configuration: WorkerConfiguration
    public let registry: ModelRegistry
    /// The `--data` directory for families that load data; nil: each family's default.
    public let dataDirectory: String?
    public let log: @Sendable (String) -> Void
    /// Serve the worker's figures at `http://metricsHost:metricsPort/metrics` (a liveness probe's
    /// target); nil: no endpoint.
    public var metricsPort: Int?
    public var metricsHost = "127.0.0.1"
    /// Training sets by `ModelFamily.dataIdentity`: families that share one load it once.
    private var trainingSets: [String: Dataset] = [:]

    /// - Parameter configuration: its `models` are replaced by the registry's families.
    public init(configuration: WorkerConfiguration, registry: ModelRegistry, dataDirectory: String? = nil,
                log: @escaping @Sendable (String) -> Void = ParameterServerHost.standardOutput) {
        var configuration = configuration
        configuration.models = registry.names
        self.configuration = configuration
        self.registry = registry
        self.dataDirectory = dataDirectory
        self.log = log
    }

    /// Loads every family's training set now, so that missing or corrupt data is reported at start-up
    /// rather than when a session first asks for the family.
    /// - Throws: ``SettingsError`` naming the family and what is wrong with its data.
    public func loadAllData() throws(SettingsError) {
        for family in registry.names {
            do {
                _ = try trainingSet(of: family)
            } catch {
                throw SettingsError("cannot load the data of model \(family): \(error)")
            }
        }
    }

    /// The model `configuration` names, over this worker's copy of its family's training set.
    public func makeModel(_ configuration: ModelConfiguration) throws -> WorkerModel {
        let model = try registry.makeModel(configuration)
        let train = try trainingSet(of: configuration.family)
        guard train.imageSize == model.inputSize else {
            throw ModelConfigurationError("\(configuration) takes \(model.inputSize) values per sample; its data has \(train.imageSize)")
        }
        return TrainingWorkerModel(model: model, trainSet: train)
    }

    private func trainingSet(of name: String) throws -> Dataset {
        let family = try registry.family(named: name)
        let identity = family.dataIdentity(directory: dataDirectory)
        if let loaded = trainingSets[identity] { return loaded }
        let data = try family.loadData(directory: dataDirectory)
        log("\(name): \(data.train.count) training samples from \(data.source)")
        trainingSets[identity] = data.train
        return data.train
    }

    /// Runs the worker on this thread until it leaves (Ctrl-C, SIGTERM, or after one session with `once`).
    /// - Returns: the exit status the worker chose (0 after a clean leave, 130 after a second Ctrl-C).
    public func run() throws(SettingsError) -> Int32 {
        unblockTerminationSignals()
        BLAS.configure(threads: configuration.threads)
        log("ps-worker \(configuration.name): models \(registry.names.joined(separator: ", ")); "
            + "BLAS: OpenBLAS \(BLAS.kernelName) kernels, \(configuration.threads) thread(s)")
        if configuration.tls != nil {
            log("TLS 1.3 to the server, checking its certificate against \(configuration.tlsServerName ?? configuration.host)")
        }
        try loadAllData()
        do {
            let loop = try EventLoop()
            let worker = WorkerRuntime(configuration: configuration, loop: loop, log: log) { [unowned self] in
                try self.makeModel($0)
            }
            let status = ExitStatus()
            worker.onExit = { code in
                status.code = code
                loop.stop()
            }
            let watchers = try loop.watchInterrupts(status: status) { worker.leave(reason: "interrupted") }
            let metrics = try metricsPort.map { port in
                let server = try WorkerMetrics.serve(worker, loop: loop, host: metricsHost, port: port)
                log("metrics on http://\(server.localAddress)/metrics")
                return server
            }
            worker.start()
            try loop.run()
            withExtendedLifetime((watchers, metrics)) {}
            return status.code
        } catch {
            throw SettingsError("the event loop failed: \(error)")
        }
    }
}
