/// A snapshot of the parameters waiting for its periodic evaluation, with what its line reports.
struct PeriodicSnapshot: Sendable {
    let parameters: [Float]
    let version: UInt64
    /// Training seconds, epochs done, seconds since start, updates applied and wire bytes when taken.
    let trainedSeconds: Double
    let epochs: Double
    let takenAt: Double
    let updates: UInt64
    let wireBytes: UInt64
    /// The session's era when taken: after a rollback its result is not recorded.
    let era: Int
}

/// Periodic evaluations (`--eval-every`, `--eval-interval`). While the session trains, snapshots are evaluated one at a
/// time on a thread that runs only when a core is idle, so on a machine shared with workers they take
/// no CPU from training; on a busy machine they wait (at most `periodicEvaluationLimit`). When
/// training ends, whatever still waits, and the snapshot the idle thread holds, is evaluated on the
/// epoch-end thread at normal priority: the idle thread cannot be raised again without privilege, and
/// the session's end must not wait for an idle core.
extension ParameterServerRuntime {
    /// After an update is applied: a periodic evaluation of `version` if the cadence says one is due.
    func evaluateIfDue(version: UInt64) {
        guard evaluationCadence.isEnabled, evaluationCadence.isDue(step: version, trainedSeconds: trainingSeconds) else { return }
        evaluatePeriodically(version: version)
    }

    /// Training time went back (a rollback to a snapshot): count `--eval-interval`'s marks from the
    /// restored time again, or none would fall due until training passed the old mark.
    func restartEvaluationCadence() {
        evaluationCadence.restart()
    }

    /// Takes a snapshot of the current version for evaluation, unless `periodicEvaluationLimit` wait.
    func evaluatePeriodically(version: UInt64) {
        guard periodicEvaluationsPending < periodicEvaluationLimit, !finishing, !finished else { return }
        let epochs = Double(coordinator.ledger.completedCount) / Double(max(1, coordinator.ledger.unitsPerEpoch))
        let (trained, takenAt, updates) = (trainingSeconds, sinceStart, coordinator.statistics.updatesApplied)
        let (bytes, era) = (history.sessionWireBytes(wireBytesIn &+ wireBytesOut), sessionEra)
        evaluationsInFlight += 1
        periodicEvaluationsPending += 1
        withCurrentParameters(abandoned: { [self] in
            evaluationsInFlight -= 1
            periodicEvaluationsPending -= 1
        }) { [self] parameters in
            periodicQueue.append(PeriodicSnapshot(
                parameters: parameters, version: version, trainedSeconds: trained, epochs: epochs, takenAt: takenAt,
                updates: updates, wireBytes: bytes, era: era))
            if finishing { finishPeriodicEvaluations() } else { evaluateNextOnIdleThread() }
        }
    }

    /// Hands the oldest waiting snapshot to the idle thread when it holds none.
    private func evaluateNextOnIdleThread() {
        guard periodicRunning == nil, !periodicQueue.isEmpty else { return }
        let snapshot = periodicQueue.removeFirst()
        periodicRunning = snapshot
        let (model, loop, generation) = (self.model, self.loop, periodicGeneration)
        periodicEvaluation.submit { [self] in
            let result = model.evaluateSnapshot(parameters: snapshot.parameters)
            loop.execute { [self] in
                // Abandoned meanwhile: evaluated again at normal priority, or dropped with its era.
                guard generation == self.periodicGeneration else { return }
                self.periodicRunning = nil
                self.record(snapshot, result)
                self.evaluateNextOnIdleThread()
            }
        }
    }

    /// Training is over: every snapshot still waiting, and the idle thread's, is evaluated on the
    /// epoch-end thread (after the last epoch's evaluation), at normal priority.
    func finishPeriodicEvaluations() {
        periodicGeneration += 1
        let pending = (periodicRunning.map { [$0] } ?? []) + periodicQueue
        (periodicRunning, periodicQueue) = (nil, [])
        let (model, loop) = (self.model, self.loop)
        for snapshot in pending {
            evaluation.submit { [self] in
                let result = model.evaluate(parameters: snapshot.parameters)
                loop.execute { [self] in self.record(snapshot, result) }
            }
        }
    }

    /// The session went back to a snapshot: the evaluations of the abandoned history are dropped.
    func dropPeriodicEvaluations() {
        let dropped = periodicQueue.count + (periodicRunning == nil ? 0 : 1)
        evaluationsInFlight -= dropped
        periodicEvaluationsPending -= dropped
        (periodicRunning, periodicQueue) = (nil, [])
        periodicGeneration += 1
    }

    /// Reports a periodic evaluation: its line, the session's history, and the time to the target.
    private func record(_ snapshot: PeriodicSnapshot, _ result: (loss: Double, accuracy: Double)) {
        evaluationsInFlight -= 1
        periodicEvaluationsPending -= 1
        if snapshot.era == sessionEra {
            reached(result.accuracy, trainedFor: snapshot.trainedSeconds)
            history.evaluations.append(.init(
                seconds: snapshot.takenAt, updates: snapshot.updates, wireBytes: snapshot.wireBytes,
                testAccuracy: result.accuracy, testLoss: result.loss))
            reporter.line("evaluation at update \(snapshot.version) (epoch \(SummaryLine.format(snapshot.epochs, digits: 2))): "
                + "test_loss \(SummaryLine.format(result.loss, digits: 4))  test_acc \(SummaryLine.format(result.accuracy * 100, digits: 2))%  "
                + "elapsed \(SummaryLine.format(snapshot.trainedSeconds, digits: 1))s")
        }
        if finishing { endSession() }
    }
}
