import ArgumentParser
import Foundation
import Learning

/// `ps-bench training`: the Swift side of the NumPy/TensorFlow comparison.
///
/// Measures sgemm GFLOP/s and training samples/s of the 784-128-10 MLP and the CNN at one batch size and
/// BLAS thread count, each the median of several timed runs after a warm-up. One line per figure, then a
/// key=value summary line.
struct TrainingBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "training",
        abstract: "Training throughput: sgemm GFLOP/s, MLP 784-128-10 and CNN samples/s.",
        discussion: """
            Set OPENBLAS_CORETYPE (e.g. Prescott) to measure a kernel other than the one Downpour picks.
            """)

    @Option(help: "Images per mini-batch.")
    var batchSize = 64

    @Option(help: "OpenBLAS threads.")
    var threads = 1

    @Option(help: "Timed runs per figure (the median is reported).")
    var runs = 5

    @Option(help: "Mini-batches per timed MLP run.")
    var mlpBatches = 900

    @Option(help: "Mini-batches per timed CNN run.")
    var cnnBatches = 60

    @Option(help: "MNIST directory (default: Data/mnist found automatically).")
    var data: String?

    @Flag(help: "Skip the CNN (it takes longest).")
    var skipCNN = false

    func validate() throws {
        guard batchSize >= 1, threads >= 1, runs >= 1, mlpBatches >= 1, cnnBatches >= 1 else {
            throw ValidationError("sizes, threads, runs and batch counts must be at least 1")
        }
    }

    func run() throws {
        BLAS.configure(threads: threads)
        print("blas_kernel: \(BLAS.kernelName) (requested \(BLAS.requestedCoreType ?? "none")), threads \(threads)")
        var summary: [(String, String)] = [("blas_kernel", BLAS.kernelName), ("threads", "\(threads)")]

        for size in [512, 64] {
            let gflops = sgemmGFLOPs(m: size == 64 ? 64 : size, n: size == 64 ? 128 : size, k: size == 64 ? 784 : size)
            let name = size == 64 ? "sgemm_64x784x128" : "sgemm_512"
            print("\(name): \(format(gflops, 1)) GFLOP/s (median of \(runs))")
            summary.append(("\(name)_gflops", format(gflops, 1)))
        }

        let train = try MNIST.load(directory: try MNIST.dataDirectory(override: data)).train
        var models: [(String, String, ModelDescription, Int)] = [("mlp_784_128_10", "mlp", .smallMLP, mlpBatches)]
        if !skipCNN { models.append(("cnn_32_64_128", "cnn", .defaultCNN, cnnBatches)) }
        for (label, key, description, batches) in models {
            let rates = samplesPerSecond(description, train: train, batches: batches)
            print(
                "\(label): \(Int(rates.wall)) samples/s, \(Int(rates.cpu)) samples per CPU-second "
                    + "(batch \(batchSize), median of \(runs))")
            summary.append(("\(key)_samples_per_second", "\(Int(rates.wall))"))
            summary.append(("\(key)_samples_per_cpu_second", "\(Int(rates.cpu))"))
        }
        summary.append(("batch_size", "\(batchSize)"))
        print(summary.map { "\($0.0)=\($0.1)" }.joined(separator: " "))
    }

    /// Median training throughput over `runs` timed runs of `batches` mini-batches, after one warm-up run:
    /// per wall-clock second, and per second of this process's CPU time (steadier on a shared machine).
    func samplesPerSecond(_ description: ModelDescription, train: Dataset, batches: Int) -> (wall: Double, cpu: Double) {
        let trainer = Trainer(
            model: description.makeModel(), optimizer: SGD(momentum: 0.9, nesterov: true), schedule: .constant(0.01),
            batchSize: batchSize, totalSteps: (runs + 1) * batches, seed: 1)
        let rates = (0...runs).map { run in
            let clock = ContinuousClock()
            let start = clock.now
            let cpuStart = processCPUSeconds()
            let result = trainer.trainEpoch(on: train, epoch: run, limit: batches)
            let samples = Double(result.samples)
            return (samples / (clock.now - start).seconds, samples / (processCPUSeconds() - cpuStart))
        }.dropFirst()
        return (median(rates.map(\.0)), median(rates.map(\.1)))
    }

    /// Median GFLOP/s of `C = A B` with `A` m x k and `B` k x n.
    func sgemmGFLOPs(m: Int, n: Int, k: Int) -> Double {
        var generator = Xoshiro256(seed: 3)
        let a = (0..<(m * k)).map { _ in Float(generator.nextUnit()) }
        let b = (0..<(k * n)).map { _ in Float(generator.nextUnit()) }
        var c = [Float](repeating: 0, count: m * n)
        let flops = 2.0 * Double(m * n * k)
        let repetitions = max(3, Int(2e9 / flops))
        return median(
            (0...runs).map { _ in
                let clock = ContinuousClock()
                let start = clock.now
                for _ in 0..<repetitions {
                    BLAS.sgemm(
                        transposeA: false, transposeB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: n,
                        beta: 0, c: &c, ldc: n)
                }
                return flops * Double(repetitions) / (clock.now - start).seconds / 1e9
            }.dropFirst())
    }
}

private func median(_ values: some Collection<Double>) -> Double {
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// CPU time used by all of this process's threads.
private func processCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

extension Duration {
    fileprivate var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
