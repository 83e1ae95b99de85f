import Messages
import Reactor

extension ParameterServerRuntime {
    /// Carries out the coordinator's actions, in order, then sets the timer for its next deadline.
    func run(_ actions: [SessionCoordinator.Action]) {
        defer { armDeadline() }
        for action in actions {
            switch action {
            case .sendWeights(let worker):
                if let peer = peers[worker], peer.state == .joined { sendWeights(to: peer) }
            case .sendUnit(let worker, let assignment, let minVersion):
                guard let peer = peers[worker], peer.state == .joined else { continue }
                var unit = Messages.WorkUnit()
                unit.unitID = assignment.unitID
                unit.epoch = UInt32(assignment.epoch)
                unit.indices = assignment.indices
                unit.minVersion = minVersion
                if configuration.localSteps > 1 { unit.localLearningRate = localLearningRate(for: peer) }
                send(Envelope(body: .workUnit(unit)), to: peer) // counts bytes out for metrics
            case .apply(let update, let version) where configuration.shards > 0:
                applyAtShards(update, version: version)
                flushDeferredDiscards()
                evaluateIfDue(version: version)
            case .apply(let update, let version):
                model.apply(update)
                evaluateIfDue(version: version)
            case .acknowledge(let worker, let ack):
                if ack.applied { metrics?.didApply(staleness: ack.staleness) } // metrics hook: staleness histogram
                guard let peer = peers[worker], peer.state == .joined else { continue }
                if ack.refusal != nil {
                    logRefusal(from: peer, "refused a push for unit \(ack.unitID): \(ack.reason)")
                }
                send(Envelope(body: .pushAck(PushAck(
                    unitID: ack.unitID, applied: ack.applied, serverVersion: ack.serverVersion,
                    staleness: ack.staleness, reason: ack.reason))), to: peer)
            case .refuse(let worker, let refusal):
                guard let peer = peers[worker] else { continue }
                logRefusal(from: peer, "refused a push (\(refusal.reason.rawValue)): \(refusal.message)")
                peer.connection.sendError(refusal.reason.wireCode, refusal.message, fatal: refusal.fatal)
            case .disconnect(let worker):
                guard let peer = peers[worker] else { continue }
                peer.state = .gone
                peer.connection.closeNow()
            case .startTraining:
                startedAt = clock.now
                trainingEndedAt = nil
                lastEpochAt = startedAt
                reporter.line("training started with \(coordinator.activeWorkers.count) worker(s)")
            case .finishEpoch(let epoch):
                finishEpoch(epoch)
            case .finishSession:
                finishing = true
                trainingEndedAt = clock.now
                finishPeriodicEvaluations()
            case .memberJoined(_, let name):
                history.membership.append(.init(seconds: sinceStart, worker: name, joined: true, reason: ""))
            case .memberLeft(let worker, let name, let reason):
                history.membership.append(.init(seconds: sinceStart, worker: name, joined: false, reason: reason))
                // Its slices still waiting at the shards will never be applied: every decision about its
                // pushes was sent before this, but for a push the open sync round holds.
                if configuration.shards > 0 { workerLeftShards(worker) }
            case .log(let text):
                reporter.line(text)
            }
        }
    }

    /// Evaluates a snapshot of the model on the evaluation thread and prints the epoch's line.
    private func finishEpoch(_ epoch: Int) {
        let now = clock.now
        let statistics = coordinator.statistics
        let seconds = max(1e-9, (now - (lastEpochAt ?? now)).seconds)
        let updates = statistics.updatesApplied - lastEpochUpdates
        let samples = statistics.samplesTrained - lastEpochSamples
        lastEpochAt = now
        lastEpochUpdates = statistics.updatesApplied
        lastEpochSamples = statistics.samplesTrained
        let (trainLoss, staleness) = coordinator.takeEpochFigures()
        let line = ProgressReporter.EpochLine(
            epoch: epoch, epochs: configuration.epochs,
            updatesPerSecond: Double(updates) / seconds, samplesPerSecond: Double(samples) / seconds,
            activeWorkers: coordinator.activeWorkers.count,
            stalenessMean: staleness.mean, stalenessMax: staleness.maximum, trainLoss: trainLoss,
            testLoss: 0, testAccuracy: 0, elapsedSeconds: trainingSeconds)
        let model = self.model
        let loop = self.loop
        // The report places the epoch when it ended, not when its evaluation finished.
        let (endedAt, updatesAtEnd, trainedAtEnd) = (sinceStart, statistics.updatesApplied, trainingSeconds)
        let bytesAtEnd = history.sessionWireBytes(wireBytesIn &+ wireBytesOut)
        let era = sessionEra
        evaluationsInFlight += 1
        withCurrentParameters(abandoned: { [self] in evaluationsInFlight -= 1 }) { [self] parameters in
            evaluation.submit { [self] in
                let result = model.evaluate(parameters: parameters)
                loop.execute { [self] in
                    // An epoch of a session that went back to a snapshot meanwhile is trained again.
                    guard era == self.sessionEra else {
                        self.evaluationsInFlight -= 1
                        if self.finishing { self.endSession() }
                        return
                    }
                    var line = line
                    line.testLoss = result.loss
                    line.testAccuracy = result.accuracy
                    self.lastEvaluation = result
                    self.reached(result.accuracy, trainedFor: trainedAtEnd)
                    self.history.epochs.append(.init(
                        epoch: line.epoch, seconds: endedAt, updates: updatesAtEnd, testAccuracy: result.accuracy,
                        testLoss: result.loss, trainLoss: line.trainLoss, wireBytes: bytesAtEnd))
                    self.evaluationsInFlight -= 1
                    self.reporter.line(line.text)
                    if self.finishing { self.endSession() }
                }
            }
        }
    }

    /// Notes when the test accuracy first reached the target.
    func reached(_ accuracy: Double, trainedFor seconds: Double) {
        if accuracy >= configuration.targetAccuracy, secondsToTarget.map({ seconds < $0 }) ?? true { secondsToTarget = seconds }
    }

    /// Once the last evaluation is in: tells every worker the session is over and closes them.
    func endSession() {
        guard finishing, evaluationsInFlight == 0, !finished, let result = lastEvaluation else { return }
        let statistics = coordinator.statistics
        let seconds = trainingSeconds
        reporter.line("final test accuracy \(SummaryLine.format(result.accuracy * 100, digits: 2))% "
            + "(loss \(SummaryLine.format(result.loss, digits: 4))) after \(configuration.epochs) epoch(s), "
            + "\(statistics.updatesApplied) updates in \(SummaryLine.format(seconds, digits: 1)) s")
        var end = SessionEnd()
        end.testAccuracy = result.accuracy
        end.testLoss = result.loss
        end.epochs = UInt32(configuration.epochs)
        end.updates = statistics.updatesApplied
        end.finalVersion = coordinator.version
        // The shards' last figures, as the final evaluation's states brought them.
        if configuration.shards > 0 { history.shards += shardPoints() }
        for peer in peers.values {
            // Shards too: they close their workers' connections and wait for the next session.
            if peer.state == .joined || peer.state == .shard { send(Envelope(body: .sessionEnd(end)), to: peer) } // counts bytes out for metrics
            peer.state = .gone
            // A half-close, not a close: the server goes on reading (and ignoring) what the worker sent
            // before it saw the end, until the worker closes too. Closing with its heartbeat or pull
            // unread would make the kernel answer with a reset, which can destroy the SessionEnd still
            // on its way, and a `--once` worker would then reconnect instead of exiting.
            peer.connection.shutdownWrite()
        }
        listener?.close()
        listener = nil
        finished = true
        // The last checkpoint holds the finished session, so a --resume after this says so.
        if let schedule = configuration.checkpoint { writeCheckpoint(schedule) }
        // A graceful close waits for the peer to read what is queued; a peer that stopped reading must
        // not keep the session from ending.
        timers.append(loop.scheduleTimer(after: configuration.drainTimeout) { [unowned self] in
            for peer in Array(peers.values) {
                reporter.line("closing \(peer.label): it did not read the session's end within \(configuration.drainTimeout)")
                peer.connection.closeNow()
            }
        })
        stopWhenDrained()
    }

    /// Reports the result once every connection has flushed and closed.
    func stopWhenDrained() {
        guard finished, peers.isEmpty, checkpointsInFlight == 0, let onFinished else { return }
        self.onFinished = nil
        for timer in timers { timer.cancel() }
        timers.removeAll()
        evaluation.stop()
        // Its job, if any, was abandoned at the session's end and is evaluated again at normal priority.
        periodicEvaluation.stopWithoutWaiting()
        checkpointWriter?.stop()
        reporter.clearBar()
        onFinished(makeResult())
    }

    private func makeResult() -> SessionResult {
        let statistics = coordinator.statistics
        defer {
            history.record(staleness: statistics.staleness)
            history.duration = sinceStart
        }
        let result = lastEvaluation ?? (loss: .nan, accuracy: 0)
        let seconds = trainingSeconds
        var summary = SummaryLine()
        summary.add("mode", configuration.policy.mode.rawValue)
        summary.add("workers", configuration.policy.workersToStart)
        summary.add("epochs", configuration.epochs)
        summary.add("updates", statistics.updatesApplied)
        summary.add("samples", statistics.samplesTrained)
        summary.add("seconds", seconds, digits: 2)
        summary.add("test_accuracy", result.accuracy)
        summary.add("test_loss", result.loss)
        summary.add("staleness_mean", statistics.staleness.mean, digits: 3)
        summary.add("staleness_max", statistics.staleness.maximum)
        summary.add("samples_per_second", Double(statistics.samplesTrained) / max(seconds, 1e-9), digits: 0)
        summary.add("seconds_to_target", secondsToTarget.map { SummaryLine.format($0, digits: 2) } ?? "-")
        summary.add("bytes_in", wireBytesIn)
        summary.add("bytes_out", wireBytesOut)
        // This server process's traffic over the samples trained in it (a resumed session's earlier
        // lives are not counted).
        let samplesHere = statistics.samplesTrained - resumedSamples
        summary.add("bytes_per_sample", Double(wireBytesIn + wireBytesOut) / Double(max(samplesHere, 1)), digits: 0)
        summary.add("units", coordinator.ledger.completedCount)
        summary.add("units_expected", coordinator.ledger.totalUnits)
        summary.add("requeued", coordinator.ledger.requeuedCount)
        summary.add("duplicates", statistics.duplicates)
        summary.add("applied_twice", statistics.appliedTwice)
        summary.add("rejected", statistics.rejectedTotal)
        summary.add("rejected_by_reason", statistics.rejectedByReason)
        summary.add("expired", statistics.leasesExpired)
        summary.add("backups", statistics.backupLeases)
        summary.add("joins", statistics.joins)
        summary.add("leaves", statistics.leaves)
        summary.add("final_version", coordinator.version)
        if configuration.shards > 0 {
            // The shards' own traffic, as their last ShardState counted it (the final evaluation's).
            let totals = shards.totals
            summary.add("shards", configuration.shards)
            summary.add("shard_bytes_in", totals.bytesIn)
            summary.add("shard_bytes_out", totals.bytesOut)
            summary.add("shard_bytes_per_sample", Double(totals.bytesIn &+ totals.bytesOut) / Double(max(samplesHere, 1)), digits: 0)
            summary.add("shard_staleness_mean", totals.stalenessMean, digits: 3)
            summary.add("shard_staleness_max", totals.stalenessMax)
            summary.add("shard_refused", totals.refused)
            summary.add("rollbacks", shards.rollbacks)
        }
        history.summary = SummaryLine.parse(summary.description[...])
        return SessionResult(summary: summary, testAccuracy: result.accuracy, testLoss: result.loss, statistics: statistics)
    }

    /// Redraws the live progress bar (a terminal only).
    func drawBar() {
        guard startedAt != nil, !finished else { return }
        let ledger = coordinator.ledger
        let fraction = Double(ledger.completedCount) / Double(max(1, ledger.totalUnits))
        let seconds = max(1e-9, trainingSeconds)
        let statistics = coordinator.statistics
        reporter.bar(fraction: fraction, detail: "epoch \(ledger.currentEpoch + 1)/\(configuration.epochs)  "
            + "\(statistics.updatesApplied) updates  \(SummaryLine.format(Double(statistics.samplesTrained) / seconds, digits: 0)) samples/s  "
            + "\(coordinator.activeWorkers.count) workers")
    }
}

extension ParameterServerRuntime {
    /// Refusals of one peer logged in full before the log thins out to one line in `refusalLogEvery`:
    /// a peer that floods the server with bad pushes cannot flood its log too.
    static let refusalsLoggedInFull = 20
    static let refusalLogEvery = 100

    /// Logs a refused message with the peer's name and address; past `refusalsLoggedInFull` of them
    /// from one peer, every `refusalLogEvery`th, with the count so far (every refusal is still counted
    /// in the summary and in `/metrics`).
    func logRefusal(from peer: Peer, _ text: String) {
        peer.refusalsLogged += 1
        let count = peer.refusalsLogged
        if count <= Self.refusalsLoggedInFull {
            reporter.line("\(peer.label): \(text)")
            if count == Self.refusalsLoggedInFull {
                reporter.line("\(peer.label): \(count) refusals; from now on one in \(Self.refusalLogEvery) is logged")
            }
        } else if count % Self.refusalLogEvery == 0 {
            reporter.line("\(peer.label): \(text) [refusal \(count) from this worker]")
        }
    }
}

extension SessionCoordinator.Refusal.Reason {
    /// The protocol's error code for this reason.
    var wireCode: ErrorReport.Code {
        switch self {
        case .wrongDimensions: .wrongDimensions
        case .notFinite: .notFinite
        case .badEncoding: .badEncoding
        case .wrongShard: .wrongShard
        }
    }
}
