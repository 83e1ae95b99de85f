/// A 2-D convolution (stride 1, no padding) with bias and optional fused ReLU, computed with im2col and
/// sgemm over chunks of a few samples.
///
/// Layout is channel-major across the batch ("CNHW"): input `[channels][batch][height][width]`, output
/// `[filters][batch][outHeight][outWidth]`. A chunk of samples then has an im2col matrix
/// `[channels*k*k][chunk*outH*outW]`, and `W[filters][channels*k*k] x columns` lands directly in the
/// output (row stride `batch*outH*outW`). Chunks are sized so the columns and the output block stay in
/// the L2 cache: one sgemm over a whole batch of 64 runs at about 30 GFLOP/s here, chunks at about 100.
/// Weight `[filters][channels][k][k]`, bias `[filters]`.
public final class ConvolutionLayer: Layer {
    public let channels: Int, filters: Int, kernel: Int
    public let height: Int, width: Int
    public let outHeight: Int, outWidth: Int
    public let relu: Bool
    /// Samples per sgemm.
    let chunk: Int
    /// im2col columns of one chunk, reused as dColumns in backward.
    private let columns = ScratchBuffer<Float>(zero: 0)

    /// About 768 KB of columns plus output block per chunk.
    static let chunkBudget = 196_608

    /// - Parameter chunk: samples per sgemm; by default as many as fit `chunkBudget` floats.
    public init(channels: Int, filters: Int, kernel: Int, height: Int, width: Int, relu: Bool, chunk: Int? = nil) {
        precondition(height >= kernel && width >= kernel)
        self.channels = channels
        self.filters = filters
        self.kernel = kernel
        self.height = height
        self.width = width
        outHeight = height - kernel + 1
        outWidth = width - kernel + 1
        self.relu = relu
        self.chunk = chunk ?? max(1, Self.chunkBudget / ((channels * kernel * kernel + filters) * outHeight * outWidth))
        columns.reserve(patchSize * self.chunk * outHeight * outWidth)
    }

    public var inputSize: Int { channels * height * width }
    public var outputSize: Int { filters * outHeight * outWidth }
    private var patchSize: Int { channels * kernel * kernel }

    public var parameterShapes: [(name: String, shape: [Int], fanIn: Int?)] {
        [("weight", [filters, channels, kernel, kernel], patchSize), ("bias", [filters], nil)]
    }

    public func reserve(batchCapacity: Int) {}

    public func forward(
        parameters: UnsafePointer<Float>, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        batch: Int
    ) {
        let n = batch * outHeight * outWidth
        for first in stride(from: 0, to: batch, by: chunk) {
            let count = min(chunk, batch - first)
            let width = count * outHeight * outWidth
            imageToColumns(input, batch: batch, first: first, count: count)
            BLAS.sgemm(
                transposeA: false, transposeB: false, m: filters, n: width, k: patchSize,
                alpha: 1, a: parameters, lda: patchSize, b: columns.pointer, ldb: width,
                beta: 0, c: output + first * outHeight * outWidth, ldc: n)
        }
        addBiasAndActivate(
            output, rows: filters, columns: n, bias: parameters + filters * patchSize, biasPerRow: true, relu: relu)
    }

    public func backward(
        parameters: UnsafePointer<Float>, input: UnsafePointer<Float>, output: UnsafePointer<Float>,
        outputGradient: UnsafeMutablePointer<Float>, inputGradient: UnsafeMutablePointer<Float>?,
        parameterGradient: UnsafeMutablePointer<Float>, batch: Int
    ) {
        let n = batch * outHeight * outWidth
        maskAndSumRows(
            outputGradient, output: output, rows: filters, columns: n, relu: relu,
            sums: parameterGradient + filters * patchSize)
        for first in stride(from: 0, to: batch, by: chunk) {
            let count = min(chunk, batch - first)
            let width = count * outHeight * outWidth
            let gradientBlock = outputGradient + first * outHeight * outWidth
            // Recomputing the chunk's columns is cheaper than keeping a whole batch of them out of cache.
            imageToColumns(input, batch: batch, first: first, count: count)
            // dW += dY columns^T
            BLAS.sgemm(
                transposeA: false, transposeB: true, m: filters, n: patchSize, k: width,
                alpha: 1, a: gradientBlock, lda: n, b: columns.pointer, ldb: width,
                beta: first == 0 ? 0 : 1, c: parameterGradient, ldc: patchSize)
            guard let inputGradient else { continue }
            // dColumns = W^T dY, written over the columns, then scattered back.
            BLAS.sgemm(
                transposeA: true, transposeB: false, m: patchSize, n: width, k: filters,
                alpha: 1, a: parameters, lda: patchSize, b: gradientBlock, ldb: n,
                beta: 0, c: columns.pointer, ldc: width)
            columnsToImage(inputGradient, batch: batch, first: first, count: count)
        }
    }

    /// Copies each kernel offset's shifted rows of samples `first..<first+count` into one row of columns.
    private func imageToColumns(_ input: UnsafePointer<Float>, batch: Int, first: Int, count: Int) {
        let width = count * outHeight * outWidth
        let planeSize = height * self.width
        for channel in 0..<channels {
            for ky in 0..<kernel {
                for kx in 0..<kernel {
                    var destination = columns.pointer + ((channel * kernel + ky) * kernel + kx) * width
                    for sample in first..<(first + count) {
                        let plane = input + (channel * batch + sample) * planeSize
                        for y in 0..<outHeight {
                            destination.update(from: plane + (y + ky) * self.width + kx, count: outWidth)
                            destination += outWidth
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of `imageToColumns`: sums each column entry back into the pixel it came from.
    private func columnsToImage(_ gradient: UnsafeMutablePointer<Float>, batch: Int, first: Int, count: Int) {
        let width = count * outHeight * outWidth
        let planeSize = height * self.width
        for channel in 0..<channels {
            (gradient + (channel * batch + first) * planeSize).update(repeating: 0, count: count * planeSize)
        }
        for channel in 0..<channels {
            for ky in 0..<kernel {
                for kx in 0..<kernel {
                    var source = UnsafePointer(columns.pointer + ((channel * kernel + ky) * kernel + kx) * width)
                    for sample in first..<(first + count) {
                        let plane = gradient + (channel * batch + sample) * planeSize
                        for y in 0..<outHeight {
                            let row = plane + (y + ky) * self.width + kx
                            for x in 0..<outWidth { row[x] += source[x] }
                            source += outWidth
                        }
                    }
                }
            }
        }
    }
}

/// 2x2 max-pooling with stride 2 (odd edges dropped), remembering each maximum's index for backward.
///
/// Works on any `[planes][height][width]` layout, so CNHW activations pool as `channels * batch` planes.
public final class MaxPoolLayer: Layer {
    public let channels: Int, height: Int, width: Int
    public let outHeight: Int, outWidth: Int
    private let argmax = ScratchBuffer<Int32>(zero: 0)

    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
        outHeight = height / 2
        outWidth = width / 2
    }

    public var inputSize: Int { channels * height * width }
    public var outputSize: Int { channels * outHeight * outWidth }
    public var parameterShapes: [(name: String, shape: [Int], fanIn: Int?)] { [] }

    public func reserve(batchCapacity: Int) { argmax.reserve(batchCapacity * outputSize) }

    public func forward(
        parameters: UnsafePointer<Float>, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        batch: Int
    ) {
        reserve(batchCapacity: batch)
        let indices = argmax.pointer
        var out = 0
        for plane in 0..<(channels * batch) {
            let base = plane &* height &* width
            for y in 0..<outHeight {
                let top = base &+ 2 &* y &* width
                let upper = input + top, lower = upper + width
                for x in 0..<outWidth {
                    // Branch-free arg-max of the 2x2 window, as offsets from `top`.
                    let a = 2 &* x, c = a &+ width
                    let ab = upper[a + 1] > upper[a] ? a &+ 1 : a
                    let cd = lower[a + 1] > lower[a] ? c &+ 1 : c
                    let abValue = input[top &+ ab], cdValue = input[top &+ cd]
                    let best = cdValue > abValue ? cd : ab
                    output[out] = max(abValue, cdValue)
                    indices[out] = Int32(truncatingIfNeeded: top &+ best)
                    out &+= 1
                }
            }
        }
    }

    public func backward(
        parameters: UnsafePointer<Float>, input: UnsafePointer<Float>, output: UnsafePointer<Float>,
        outputGradient: UnsafeMutablePointer<Float>, inputGradient: UnsafeMutablePointer<Float>?,
        parameterGradient: UnsafeMutablePointer<Float>, batch: Int
    ) {
        guard let inputGradient else { return }
        inputGradient.update(repeating: 0, count: batch * inputSize)
        let indices = argmax.pointer
        for index in 0..<(batch * outputSize) { inputGradient[Int(indices[index])] += outputGradient[index] }
    }
}

/// Reorders CNHW activations `[channels][batch][spatial]` into rows `[batch][channels*spatial]` for the
/// dense layers (and back in backward).
public final class FlattenLayer: Layer {
    public let channels: Int, spatial: Int

    public init(channels: Int, spatial: Int) {
        self.channels = channels
        self.spatial = spatial
    }

    public var inputSize: Int { channels * spatial }
    public var outputSize: Int { channels * spatial }
    public var parameterShapes: [(name: String, shape: [Int], fanIn: Int?)] { [] }
    public func reserve(batchCapacity: Int) {}

    public func forward(
        parameters: UnsafePointer<Float>, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        batch: Int
    ) {
        for channel in 0..<channels {
            for sample in 0..<batch {
                (output + sample * inputSize + channel * spatial)
                    .update(from: input + (channel * batch + sample) * spatial, count: spatial)
            }
        }
    }

    public func backward(
        parameters: UnsafePointer<Float>, input: UnsafePointer<Float>, output: UnsafePointer<Float>,
        outputGradient: UnsafeMutablePointer<Float>, inputGradient: UnsafeMutablePointer<Float>?,
        parameterGradient: UnsafeMutablePointer<Float>, batch: Int
    ) {
        guard let inputGradient else { return }
        for channel in 0..<channels {
            for sample in 0..<batch {
                (inputGradient + (channel * batch + sample) * spatial)
                    .update(from: outputGradient + sample * inputSize + channel * spatial, count: spatial)
            }
        }
    }
}
