import FoundationEssentials
import Glibc
import Reactor

extension ParameterServerRuntime {
    /// Creates a session that carries on from `checkpoint`: the model, the optimiser, the work units
    /// done and the figures so far are restored; units that were held by workers wait again.
    ///
    /// `configuration` must be the checkpoint's recipe applied to the operator's configuration (see
    /// `SessionRecipe.apply(to:)`), and `model` built from the same recipe. The session waits for
    /// `workersToStart` workers again before training resumes.
    /// - Throws: `CheckpointError.invalidContents` when the checkpoint does not fit the configuration
    ///   or the model; nothing has been changed then.
    public convenience init(
        configuration: ServerConfiguration, model: ServerModel, loop: EventLoop,
        reporter: ProgressReporter = ProgressReporter(),
        permutation: @escaping @Sendable (_ epoch: Int) -> [UInt32],
        resuming checkpoint: SessionCheckpoint
    ) throws(CheckpointError) {
        var ledger = WorkUnitLedger(
            sampleCount: configuration.trainSamples, samplesPerUnit: configuration.samplesPerUnit,
            epochs: configuration.epochs, permutation: permutation)
        do {
            try ledger.restore(checkpoint.ledger)
        } catch {
            throw .invalidContents(error.description)
        }
        // The model is changed last, once everything else is known to fit.
        do {
            try model.restore(checkpoint.model)
        } catch {
            throw .invalidContents(error.description)
        }
        self.init(configuration: configuration, model: model, loop: loop, reporter: reporter, permutation: permutation)
        carryOn(from: checkpoint, ledger: ledger)
        resumes = checkpoint.resumes + 1
        resumedSessionSeconds = checkpoint.sessionSeconds
        resumedSamples = checkpoint.statistics.samplesTrained
        history.throughput = checkpoint.throughput
        history.membership = checkpoint.membership
        history.membership.append(.init(seconds: sinceStart, worker: "ps-server", joined: true, reason: "resumed from its checkpoint"))
        // Workers that take deltas go on from the weights the last ones held, as they would have.
        if let point = checkpoint.pulledWeights, let delta = configuration.deltaEncoding, point.values.count == model.parameterCount {
            publisher = WeightsPublisher(
                count: model.parameterCount, pullEncoding: configuration.pullEncoding, deltaEncoding: delta,
                strideAllowed: configuration.policy.pullsMayLag, localSteps: configuration.localSteps, resuming: point)
        }
    }

    /// Takes the session's progress from `checkpoint`: the coordinator (units done, version, figures),
    /// the training time and the evaluations, with `ledger` already restored from it. Training waits
    /// for `workersToStart` workers again.
    func carryOn(from checkpoint: SessionCheckpoint, ledger: WorkUnitLedger) {
        coordinator = SessionCoordinator(
            policy: configuration.policy, ledger: ledger, parameterCount: model.parameterCount,
            version: checkpoint.version, statistics: checkpoint.statistics)
        coordinator.parametersAtShards = configuration.shards > 0
        resumedTrainingSeconds = checkpoint.trainingSeconds
        lastEpochUpdates = checkpoint.statistics.updatesApplied
        lastEpochSamples = checkpoint.statistics.samplesTrained
        updatesAtLastCheckpoint = checkpoint.statistics.updatesApplied
        history.epochs = checkpoint.epochs
        history.evaluations = checkpoint.evaluations
        lastEvaluation = checkpoint.epochs.last.map { (loss: $0.testLoss, accuracy: $0.testAccuracy) }
    }

    /// Goes back to `checkpoint` within this process (a sharded session that lost a shard): the
    /// coordinator and figures as they were then, no worker in the session, training stopped until
    /// enough workers join again.
    func restoreSession(from checkpoint: SessionCheckpoint) {
        var ledger = WorkUnitLedger(
            sampleCount: configuration.trainSamples, samplesPerUnit: configuration.samplesPerUnit,
            epochs: configuration.epochs, permutation: permutation)
        // The checkpoint was taken from this very ledger, so it fits.
        try? ledger.restore(checkpoint.ledger)
        carryOn(from: checkpoint, ledger: ledger)
        startedAt = nil
        trainingEndedAt = nil
        finishing = false
        dropPeriodicEvaluations()
        restartEvaluationCadence()
        deadlineTimer?.cancel()
        deadlineTimer = nil
        armedDeadline = nil
    }

    /// The session's state now, as a checkpoint. Loop thread only: the model and the coordinator
    /// agree here, since every update the coordinator has counted has been applied.
    func makeCheckpoint(recipe: SessionRecipe) -> SessionCheckpoint {
        makeCheckpoint(recipe: recipe, model: model.trainingState())
    }

    /// The session's state now with `model` as its model state (a sharded session's, gathered from
    /// the shards at this version).
    func makeCheckpoint(recipe: SessionRecipe, model: ModelTrainingState) -> SessionCheckpoint {
        SessionCheckpoint(
            recipe: recipe, version: coordinator.version, model: model,
            ledger: coordinator.ledger.progress, statistics: coordinator.statistics, epochs: history.epochs,
            throughput: history.throughput, membership: history.membership, evaluations: history.evaluations,
            trainingSeconds: trainingSeconds,
            sessionSeconds: sinceStart, resumes: resumes, pulledWeights: configuration.shards > 0 ? nil : publisher.lastPoint)
    }

    /// Writes a checkpoint when the schedule says one is due: enough updates, or enough time with at
    /// least one update, since the last.
    func checkpointIfDue() {
        guard let schedule = configuration.checkpoint, let startedAt, !finishing, !finished, checkpointsInFlight == 0 else {
            return
        }
        let updates = coordinator.statistics.updatesApplied
        guard updates > updatesAtLastCheckpoint else { return }
        let dueByCount = updates - updatesAtLastCheckpoint >= UInt64(schedule.everyUpdates)
        let dueByTime = clock.now - (lastCheckpointAt ?? startedAt) >= schedule.interval
        if dueByCount || dueByTime { writeCheckpoint(schedule) }
    }

    /// Takes a checkpoint on the loop thread and writes it on the checkpoint thread, so training does
    /// not wait for the disk. Writes happen one at a time, in order.
    func writeCheckpoint(_ schedule: CheckpointSchedule) {
        guard configuration.shards > 0 else {
            write(makeCheckpoint(recipe: schedule.recipe), schedule)
            return
        }
        if finished {
            // The shards have been told the session is over; the final evaluation gathered the last version.
            guard let snapshot = shards.lastSnapshot, snapshot.version == coordinator.version else {
                reporter.line("no checkpoint of the final version: the shards' last state is of version "
                    + "\(shards.lastSnapshot.map { String($0.version) } ?? "none")")
                return
            }
            write(makeCheckpoint(recipe: schedule.recipe, model: snapshot.model), schedule)
            return
        }
        // Counted while the ranges are gathered too, so that no second checkpoint starts meanwhile.
        checkpointsInFlight += 1
        updatesAtLastCheckpoint = coordinator.statistics.updatesApplied
        gatherShards(abandoned: { [self] in checkpointsInFlight -= 1 }) { [self] checkpoint in
            checkpointsInFlight -= 1
            write(checkpoint, schedule)
        }
    }

    /// Writes `checkpoint` on the checkpoint thread.
    private func write(_ checkpoint: SessionCheckpoint, _ schedule: CheckpointSchedule) {
        updatesAtLastCheckpoint = max(updatesAtLastCheckpoint, checkpoint.statistics.updatesApplied)
        checkpointsInFlight += 1
        let writer = checkpointWriter ?? ComputeThread()
        checkpointWriter = writer
        let (path, loop, units, totalUnits) = (schedule.path, loop, checkpoint.ledger.completedCount, coordinator.ledger.totalUnits)
        writer.submit { [self] in
            let began = ContinuousClock.now
            let outcome: Result<Int, CheckpointError>
            do throws(CheckpointError) {
                let bytes = checkpoint.fileBytes()
                try CheckpointFile.writeAtomically(bytes, to: path)
                outcome = .success(bytes.count)
            } catch {
                outcome = .failure(error)
            }
            let took = ContinuousClock.now - began
            loop.execute { [self] in
                checkpointsInFlight -= 1
                switch outcome {
                case .success(let size):
                    didWriteCheckpoint()
                    reporter.line("checkpoint written to \(path): version \(checkpoint.version), "
                        + "\(units)/\(totalUnits) units, \(SummaryLine.format(Double(size) / 1_048_576, digits: 1)) MiB "
                        + "in \(Int(took.seconds * 1000)) ms")
                case .failure(let error):
                    // Training goes on: a full disk must not end a session that can still finish.
                    reporter.line("checkpoint to \(path) failed (training goes on): \(error)")
                }
                if finished { stopWhenDrained() }
            }
        }
    }

    /// Writes a checkpoint now, on the calling (loop) thread, and waits for it: for an operator's
    /// interrupt, so that `--resume` loses nothing of the session so far.
    /// - Returns: the path written, or nil when there is no checkpoint schedule or no training yet.
    /// - Throws: `CheckpointError` when the write fails.
    @discardableResult
    public func checkpointNow() throws(CheckpointError) -> String? {
        guard let schedule = configuration.checkpoint, startedAt != nil else { return nil }
        // A sharded session's ranges cannot be gathered while the caller waits: its last snapshot is
        // the newest state every range agrees on.
        guard let checkpoint = configuration.shards == 0 ? makeCheckpoint(recipe: schedule.recipe) : shards.lastSnapshot else { return nil }
        try checkpoint.write(to: schedule.path)
        updatesAtLastCheckpoint = checkpoint.statistics.updatesApplied
        didWriteCheckpoint()
        return schedule.path
    }

    /// Counts a checkpoint that reached the disk, for the age metric and the time-based schedule.
    private func didWriteCheckpoint() {
        checkpointsWritten += 1
        lastCheckpointAt = clock.now
    }
}
