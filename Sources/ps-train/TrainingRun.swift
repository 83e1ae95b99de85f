import FoundationEssentials
import Glibc
import Learning

/// One single-process training run: epochs of mini-batches, an evaluation after each (and every
/// `evalEvery` batches or `evalInterval` training seconds if asked), one line per epoch and a summary
/// line of key=value pairs.
struct TrainingRun {
    let options: TrainOptions
    let configuration: ModelConfiguration
    let trainer: Trainer
    let train: Dataset
    let test: Dataset
    let optimizer: OptimizerKind
    let rate: Float
    let weightDecay: Float

    func run() {
        let (epochs, targetAccuracy) = (options.epochs, options.targetAccuracy)
        var cadence = EvaluationCadence(everySteps: options.evalEvery.map { UInt64($0) }, intervalSeconds: options.evalInterval)
        // By time, the clock is read after every batch (tens of nanoseconds against a batch's
        // hundreds of microseconds); by batches alone, every N; else the progress bar's 50.
        let callbackEvery = options.evalInterval != nil ? 1 : options.evalEvery ?? 50
        let (batchSize, schedule, threads) = (options.batchSize, options.schedule, options.threads)
        let progress = isatty(STDOUT_FILENO) != 0 ? ProgressBar() : nil
        let clock = ContinuousClock()
        let start = clock.now
        var trainingSeconds = 0.0
        var samples = 0
        var last: (trainLoss: Double, testLoss: Double, accuracy: Double) = (0, 0, 0)
        // Training seconds at the first evaluation that reached --target-accuracy.
        var secondsToTarget: Double?
        for epoch in 0..<epochs {
            let epochStart = clock.now
            var evaluating = Duration.zero
            let result = trainer.trainEpoch(on: train, epoch: epoch, progressEvery: callbackEvery) { done, total, loss in
                if callbackEvery > 1 || done % 50 == 0 || done == total {
                    progress?.show(epoch: epoch + 1, of: epochs, done: done, total: total, loss: loss)
                }
                guard cadence.isEnabled else { return }
                let evaluationStart = clock.now
                let trained = trainingSeconds + (evaluationStart - epochStart - evaluating).seconds
                // The epoch's last batch uses up a mark too: its end-of-epoch evaluation follows.
                guard cadence.isDue(step: UInt64(done), trainedSeconds: trained), done < total else { return }
                let evaluation = trainer.evaluate(on: test)
                evaluating += clock.now - evaluationStart
                if secondsToTarget == nil, evaluation.accuracy >= targetAccuracy { secondsToTarget = trained }
                progress?.clear()
                print("evaluation at epoch \(epoch + 1), batch \(done)/\(total): test loss \(format(evaluation.loss, 4)), "
                    + "test accuracy \(format(100 * evaluation.accuracy, 2))%, trained \(format(trained, 2)) s")
                fflush(nil)
            }
            let seconds = (clock.now - epochStart - evaluating).seconds
            trainingSeconds += seconds
            samples += result.samples
            progress?.clear()
            let evaluation = trainer.evaluate(on: test)
            last = (result.loss, evaluation.loss, evaluation.accuracy)
            if secondsToTarget == nil, evaluation.accuracy >= targetAccuracy { secondsToTarget = trainingSeconds }
            print(
                "epoch \(epoch + 1)/\(epochs): \(Int(Double(result.samples) / seconds)) samples/s, "
                    + "train loss \(format(result.loss, 4)), test loss \(format(evaluation.loss, 4)), "
                    + "test accuracy \(format(100 * evaluation.accuracy, 2))%, "
                    + "elapsed \(format((clock.now - start).seconds, 1)) s")
            fflush(nil)  // one line per epoch even when stdout is a pipe
        }
        let summary: KeyValuePairs<String, String> = [
            "model": configuration.description,
            "epochs": "\(epochs)",
            "batch_size": "\(batchSize)",
            "optimizer": optimizer.rawValue,
            "lr": "\(rate)",
            "weight_decay": "\(weightDecay)",
            "schedule": schedule.rawValue,
            "threads": "\(threads)",
            "blas_kernel": BLAS.kernelName,
            "train_images": "\(train.count)",
            "seconds": format((clock.now - start).seconds, 2),
            "training_seconds": format(trainingSeconds, 2),
            "samples_per_second": "\(Int(Double(samples) / trainingSeconds))",
            "train_loss": format(last.trainLoss, 4),
            "test_loss": format(last.testLoss, 4),
            "test_accuracy": format(last.accuracy, 4),
            "target_accuracy": format(targetAccuracy, 4),
            "seconds_to_target": secondsToTarget.map { format($0, 2) } ?? "-",
        ]
        print(summary.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
    }
}
