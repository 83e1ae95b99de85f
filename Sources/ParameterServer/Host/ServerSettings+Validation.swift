import FoundationEssentials
import Glibc
import Learning

extension ServerSettings {
    /// Checks every setting on its own and against the others, naming the flag at fault.
    /// - Parameter registry: the model families the build knows, to check `model`.
    public func validate(registry: ModelRegistry) throws(SettingsError) {
        // Without a token or TLS, anyone who can reach the port can join, push updates and read the model.
        let token = try resolvedToken()
        guard Self.isLoopback(host) || insecure || token != nil || usesTLS else {
            throw SettingsError("--host \(host) is not a loopback address: anyone who can reach it could join the "
                + "session and push updates; give the server a token workers must prove they hold (--token-file PATH "
                + "or \(AuthenticationToken.environmentVariable)), TLS (--tls-cert and --tls-key), or pass --insecure to accept that")
        }
        try check((tlsCertificate == nil) == (tlsKey == nil), "--tls-cert and --tls-key go together")
        try check(tlsClientCA == nil || usesTLS, "--tls-client-ca needs --tls-cert and --tls-key: mutual TLS is TLS first")
        for (flag, path) in [("--tls-cert", tlsCertificate), ("--tls-key", tlsKey), ("--tls-client-ca", tlsClientCA)] {
            if let path { try check(FileManager.default.isReadableFile(atPath: path), "\(flag): cannot read \(path)") }
        }
        try check((0...65535).contains(port), "--port must be 0...65535")
        if let metricsPort { try check((0...65535).contains(metricsPort), "--metrics-port must be 0...65535") }
        try check(workers >= 1, "--workers must be at least 1")
        try check(epochs >= 1, "--epochs must be at least 1")
        try check(effectiveBatchSize >= 1, "--batch-size must be at least 1")
        try check(steps >= 1, "--local-steps must be at least 1")
        try check(maxStaleness >= 0, "--max-staleness must not be negative")
        try check(unitsAhead >= 1, "--units-ahead must be at least 1")
        try check((learningRate ?? 1) > 0 && (learningRate ?? 1).isFinite, "--lr must be a positive number")
        try check((localLearningRate ?? 1) > 0 && (localLearningRate ?? 1).isFinite, "--local-lr must be a positive number")
        try check((0..<1).contains(localMomentum), "--local-momentum must be in 0..<1")
        try check((0..<1).contains(momentum ?? 0), "--momentum must be in 0..<1")
        if let problem = effectiveOptimizer.momentumProblem(effectiveMomentum) {
            throw SettingsError("--optimizer \(effectiveOptimizer.rawValue) with --momentum \(effectiveMomentum): \(problem)")
        }
        try check(threads >= 1, "--threads must be at least 1")
        try check(maxFrameBytes >= 1024, "--max-frame-bytes must be at least 1024")
        try check(maxConnections >= 1, "--max-connections must be at least 1")
        try check(maxWriteQueueBytes >= 1 << 20, "--max-write-queue-bytes must be at least 1 MiB (1048576)")
        try check(handshakeTimeout > 0 && heartbeatTimeout > 0, "timeouts must be positive")
        try check(heartbeatInterval >= 0.1 && heartbeatInterval < heartbeatTimeout,
                  "--heartbeat-interval must be at least 0.1 s and below --heartbeat-timeout")
        if let evaluateEvery { try check(evaluateEvery >= 1, "--eval-every must be at least 1") }
        if let evaluateInterval {
            try check(evaluateInterval > 0 && evaluateInterval.isFinite, "--eval-interval must be a positive number of seconds")
        }
        try check((0...1).contains(targetAccuracy), "--target-accuracy must be in 0...1")
        try check(leaseFloor > 0 && leaseFloor.isFinite, "--lease-floor must be a positive number of seconds")
        if let trainSamples { try check(trainSamples >= 1, "--train-samples must be at least 1") }
        if let testSamples { try check(testSamples >= 1, "--test-samples must be at least 1") }
        try check(checkpointEvery >= 1, "--checkpoint-every must be at least 1")
        try check(checkpointInterval > 0 && checkpointInterval.isFinite, "--checkpoint-interval must be positive")
        if let checkpoint { try checkWritableDirectory(of: checkpoint, flag: "--checkpoint") }
        if let report { try checkWritableDirectory(of: report, flag: "--report") }
        try check((shards ?? 0) >= 0, "--shards must not be negative")
        try check((shards ?? 0) <= 256, "--shards must be at most 256")
        try check(snapshotInterval > 0 && snapshotInterval.isFinite, "--snapshot-every must be a positive number of seconds")
        if let resume { try check(FileManager.default.fileExists(atPath: resume), "--resume: no checkpoint at \(resume)") }
        let family: any ModelFamily
        do {
            family = try registry.family(named: try registry.configuration(parsing: model).family)
        } catch {
            throw SettingsError("--model: \(error.description)")
        }
        try checkLocalOptimizer(family: family)
    }

    /// The local-optimiser flags against the session: they need local steps, a weight decay needs Adam,
    /// and `--local-lr` for a family whose local steps are Adam's by default (the CNN) must say which
    /// optimiser it is for, since it was Nesterov's rate before local Adam. A resumed session's settings
    /// are its checkpoint's, so only the values are checked then.
    private func checkLocalOptimizer(family: any ModelFamily) throws(SettingsError) {
        if let localWeightDecay {
            try check(localWeightDecay >= 0 && localWeightDecay.isFinite, "--local-weight-decay must be a non-negative number")
        }
        guard resume == nil else { return }
        let named = [("--local-optimizer", localOptimizer != nil), ("--local-weight-decay", localWeightDecay != nil)]
            .filter(\.1).map(\.0)
        try check(steps > 1 || named.isEmpty,
                  "\(named.joined(separator: " and ")) \(named.count == 1 ? "needs" : "need") local steps (--local-steps > 1; --uncompressed pushes gradients)")
        let optimizer = effectiveLocalOptimizer(defaults: family.defaults)
        try check(localWeightDecay == nil || optimizer == .adam,
                  "--local-weight-decay applies to local Adam; this session's local steps are Nesterov's (add --local-optimizer adam)")
        try check(localLearningRate == nil || localOptimizer != nil || optimizer != .adam,
                  "--model \(family.name) takes its local steps with Adam by default, so --local-lr would be Adam's rate "
                    + "(default \(Self.localAdamLearningRate)); say which optimiser it is for: --local-optimizer adam, "
                    + "or --local-optimizer nesterov for Nesterov steps at that rate")
    }

    private func check(_ condition: Bool, _ message: @autoclosure () -> String) throws(SettingsError) {
        guard condition else { throw SettingsError(message()) }
    }

    private func checkWritableDirectory(of path: String, flag: String) throws(SettingsError) {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try check(FileManager.default.isWritableFile(atPath: directory), "\(flag): cannot write to the directory \(directory)")
    }
}
