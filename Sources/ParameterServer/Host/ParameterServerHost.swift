import FoundationEssentials
import Glibc
import Learning
import Reactor

/// Runs one parameter-server session the way `ps-server` does: settings in, a summary line out.
///
/// It resolves the defaults, loads the model family's data, resumes from a checkpoint if asked,
/// derives the limits from the model's size, serves metrics, writes the report, and turns Ctrl-C and
/// SIGTERM into a last checkpoint. `ps-server` is a command line over it; an embedder or a test gets
/// the same server with a few lines.
///
/// ```swift
/// var settings = ServerSettings()
/// settings.model = "spirals"
/// let status = try ParameterServerHost(settings: settings, registry: registry).run()
/// ```
public final class ParameterServerHost {
    public let settings: ServerSettings
    public let registry: ModelRegistry
    /// Where the host's lines go (standard output, flushed, by default).
    public let log: @Sendable (String) -> Void

    public init(settings: ServerSettings, registry: ModelRegistry, log: @escaping @Sendable (String) -> Void = ParameterServerHost.standardOutput) {
        self.settings = settings
        self.registry = registry
        self.log = log
    }

    /// Prints a line and flushes, so that a pipe sees it at once.
    public static let standardOutput: @Sendable (String) -> Void = { line in
        print(line)
        fflush(nil)
    }

    /// Runs the session on this thread until it is over.
    /// - Returns: the exit status: 0 when the session finished, 130 when interrupted, 1 when the report
    ///   could not be written.
    /// - Throws: ``SettingsError`` for settings that cannot work and failures to start (data, resume,
    ///   listening), each said as one sentence.
    public func run() throws(SettingsError) -> Int32 {
        try settings.validate(registry: registry)
        unblockTerminationSignals()
        if let warning = FileDescriptorLimit.raise(forConnections: settings.maxConnections) { log(warning) }
        BLAS.configure(threads: settings.threads)
        let token = try settings.resolvedToken()
        for warning in token?.warnings ?? [] { log("WARNING: \(warning)") }
        if let certificate = settings.tlsCertificate {
            let mutual = settings.tlsClientCA.map { "; workers must present a certificate signed by \($0)" } ?? ""
            log("TLS 1.3 on every connection: certificate \(certificate)\(mutual)")
        }
        if let token {
            log("authentication: workers must prove they hold the token from \(token.source)"
                + (settings.usesTLS ? ", bound to each TLS connection" : ""))
        } else if settings.tlsClientCA == nil, !ServerSettings.isLoopback(settings.host) {
            log("WARNING: listening on \(settings.host) without authentication\(settings.usesTLS ? "" : " (--insecure)"): "
                + "anyone who can reach this port can join and push updates\(settings.usesTLS ? " (encrypted)" : "")")
        }
        let resumed = try settings.resume.map(Self.loadCheckpoint)
        if let resumed, let path = settings.resume, resumed.ledger.finishedEpochs == resumed.recipe.epochs {
            let accuracy = resumed.epochs.last.map { SummaryLine.format($0.testAccuracy * 100, digits: 2) + "%" } ?? "unknown"
            log("the session in \(path) finished already (test accuracy \(accuracy), version \(resumed.version)); "
                + "start a new session without --resume")
            return 0
        }
        log("BLAS: OpenBLAS \(BLAS.kernelName) kernels, \(settings.threads) thread(s)")
        // A sharded session resumes sharded unless the command line says otherwise.
        var settings = self.settings
        if settings.shards == nil, let resumed { settings.shards = resumed.shards.count }
        let session = try SessionAssembly(settings: settings, registry: registry, resumed: resumed, token: token?.token)
        log("data: \(session.recipe.trainSamples) training and \(session.test.count) test samples from \(session.data.source)")
        log("optimiser: \(session.recipe.optimizerSummary)")
        let recipe = session.recipe
        let local = recipe.localSteps > 1
            ? "\(recipe.localSteps) local steps per push (" + (recipe.localAdam.map {
                "Adam lr \($0.learningRate), weight decay \($0.weightDecay); workers without Adam: " } ?? "")
                + "lr \(recipe.localLearningRate), Nesterov \(recipe.localMomentum))"
            : "1 step per push (gradients)"
        let deltas = session.configuration.deltaEncoding.map { ", \($0) deltas" } ?? ""
        log("exchange: \(local); pushes \(session.configuration.pushEncoding), weights \(session.configuration.pullEncoding)\(deltas)")
        return try serve(session, resumed: resumed)
    }

    /// Loads `path` for --resume, or says plainly why not.
    private static func loadCheckpoint(_ path: String) throws(SettingsError) -> SessionCheckpoint {
        do {
            return try SessionCheckpoint.load(path: path)
        } catch {
            throw SettingsError("cannot resume from \(path): \(error)")
        }
    }

    private func serve(_ session: SessionAssembly, resumed: SessionCheckpoint?) throws(SettingsError) -> Int32 {
        let loop: EventLoop
        do {
            loop = try EventLoop()
        } catch {
            throw SettingsError("cannot start the event loop: \(error)")
        }
        let server = try session.makeRuntime(loop: loop, resuming: resumed)
        if let resumed, let path = settings.resume {
            log("resumed session \(session.recipe.sessionID) from \(path) (resume \(resumed.resumes + 1)): version \(resumed.version), "
                + "\(resumed.ledger.completedCount)/\(server.totalUnits) units done, \(SummaryLine.format(resumed.trainingSeconds, digits: 1)) s trained; "
                + "its settings replace the command line's")
            if !resumed.shards.isEmpty {
                log("the checkpoint's model was joined from \(resumed.shards.count) shard(s) ("
                    + resumed.shards.map { "\($0.shard) at \($0.address)" }.joined(separator: ", ") + "); "
                    + (session.configuration.shards > 0 ? "now \(session.configuration.shards) shard(s) hold it" : "now this server holds it"))
            }
        }
        let status = ExitStatus()
        let (reportPath, log) = (settings.report, self.log)
        server.onFinished = { [unowned server] result in
            if let reportPath {
                do {
                    try CheckpointFile.writeAtomically(Array(RunReport.html(server.history).utf8), to: reportPath)
                    log("report written to \(reportPath)")
                } catch {
                    log("ps-server: could not write the report to \(reportPath): \(error)")
                    status.code = 1
                }
            }
            log(result.summary.description)
            loop.stop()
        }
        do {
            try server.start()
        } catch {
            throw SettingsError("cannot listen on \(settings.host):\(settings.port): \(error)")
        }
        if let metricsPort = settings.metricsPort {
            do {
                let metrics = try server.startMetrics(host: settings.host, port: metricsPort)
                log("metrics on http://\(metrics.localAddress)/metrics")
            } catch {
                throw SettingsError("cannot serve metrics on \(settings.host):\(metricsPort): \(error)")
            }
        }
        let interrupted = { [unowned server] in
            log("\nps-server: interrupted; the session ends unfinished")
            // With checkpoints on, keep everything trained so far for --resume.
            do {
                if let path = try server.checkpointNow() { log("checkpoint written to \(path); continue with --resume \(path)") }
            } catch {
                log("ps-server: the last checkpoint could not be written: \(error)")
            }
            status.code = 130
            loop.stop()
        }
        do {
            let watchers = [try loop.watchSignal(SIGINT, interrupted), try loop.watchSignal(SIGTERM, interrupted)]
            try loop.run()
            withExtendedLifetime(watchers) {}
        } catch {
            throw SettingsError("the event loop failed: \(error)")
        }
        return status.code
    }
}
