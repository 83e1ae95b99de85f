/// A 2-D convolution (stride 1, no padding) with bias and optional fused ReLU, computed as one sgemm
/// over the whole batch after im2col.
///
/// Layout is channel-major across the batch ("CNHW"): input `[channels][batch][height][width]`, output
/// `[filters][batch][outHeight][outWidth]`. Then the im2col matrix is `[channels*k*k][batch*outH*outW]`
/// and the forward pass is a single `W[filters][channels*k*k] x columns` product whose result is already
/// in the output layout. Weight `[filters][channels][k][k]`, bias `[filters]`.
final class ConvolutionLayer: Layer {
    let channels: Int, filters: Int, kernel: Int
    let height: Int, width: Int
    let outHeight: Int, outWidth: Int
    let relu: Bool
    /// im2col columns of the last forward pass, reused as dColumns in backward.
    private let columns = ScratchBuffer<Float>(zero: 0)

    init(channels: Int, filters: Int, kernel: Int, height: Int, width: Int, relu: Bool) {
        precondition(height >= kernel && width >= kernel)
        self.channels = channels
        self.filters = filters
        self.kernel = kernel
        self.height = height
        self.width = width
        outHeight = height - kernel + 1
        outWidth = width - kernel + 1
        self.relu = relu
    }

    var inputSize: Int { channels * height * width }
    var outputSize: Int { filters * outHeight * outWidth }
    private var patchSize: Int { channels * kernel * kernel }

    var parameterShapes: [(name: String, shape: [Int], fanIn: Int?)] {
        [("weight", [filters, channels, kernel, kernel], patchSize), ("bias", [filters], nil)]
    }

    func reserve(batchCapacity: Int) { columns.reserve(patchSize * batchCapacity * outHeight * outWidth) }

    func forward(
        parameters: UnsafePointer<Float>, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        batch: Int
    ) {
        reserve(batchCapacity: batch)
        let n = batch * outHeight * outWidth
        imageToColumns(input, batch: batch)
        BLAS.sgemm(
            transposeA: false, transposeB: false, m: filters, n: n, k: patchSize,
            alpha: 1, a: parameters, lda: patchSize, b: columns.pointer, ldb: n, beta: 0, c: output, ldc: n)
        addBiasAndActivate(
            output, rows: filters, columns: n, bias: parameters + filters * patchSize, biasPerRow: true, relu: relu)
    }

    func backward(
        parameters: UnsafePointer<Float>, input: UnsafePointer<Float>, output: UnsafePointer<Float>,
        outputGradient: UnsafeMutablePointer<Float>, inputGradient: UnsafeMutablePointer<Float>?,
        parameterGradient: UnsafeMutablePointer<Float>, batch: Int
    ) {
        let n = batch * outHeight * outWidth
        maskAndSumRows(
            outputGradient, output: output, rows: filters, columns: n, relu: relu,
            sums: parameterGradient + filters * patchSize)
        // dW = dY columns^T
        BLAS.sgemm(
            transposeA: false, transposeB: true, m: filters, n: patchSize, k: n,
            alpha: 1, a: outputGradient, lda: n, b: columns.pointer, ldb: n,
            beta: 0, c: parameterGradient, ldc: patchSize)
        guard let inputGradient else { return }
        // dColumns = W^T dY, written over the columns (no longer needed), then scattered back.
        BLAS.sgemm(
            transposeA: true, transposeB: false, m: patchSize, n: n, k: filters,
            alpha: 1, a: parameters, lda: patchSize, b: outputGradient, ldb: n, beta: 0, c: columns.pointer, ldc: n)
        columnsToImage(inputGradient, batch: batch)
    }

    /// Copies each kernel offset's shifted rows into one row of the columns matrix.
    private func imageToColumns(_ input: UnsafePointer<Float>, batch: Int) {
        let n = batch * outHeight * outWidth
        let planeSize = height * width
        for channel in 0..<channels {
            for ky in 0..<kernel {
                for kx in 0..<kernel {
                    var destination = columns.pointer + ((channel * kernel + ky) * kernel + kx) * n
                    for sample in 0..<batch {
                        let plane = input + (channel * batch + sample) * planeSize
                        for y in 0..<outHeight {
                            destination.update(from: plane + (y + ky) * width + kx, count: outWidth)
                            destination += outWidth
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of `imageToColumns`: sums each column entry back into the pixel it came from.
    private func columnsToImage(_ gradient: UnsafeMutablePointer<Float>, batch: Int) {
        let n = batch * outHeight * outWidth
        let planeSize = height * width
        gradient.update(repeating: 0, count: channels * batch * planeSize)
        for channel in 0..<channels {
            for ky in 0..<kernel {
                for kx in 0..<kernel {
                    var source = UnsafePointer(columns.pointer + ((channel * kernel + ky) * kernel + kx) * n)
                    for sample in 0..<batch {
                        let plane = gradient + (channel * batch + sample) * planeSize
                        for y in 0..<outHeight {
                            let row = plane + (y + ky) * width + kx
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
final class MaxPoolLayer: Layer {
    let channels: Int, height: Int, width: Int
    let outHeight: Int, outWidth: Int
    private let argmax = ScratchBuffer<Int32>(zero: 0)

    init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
        outHeight = height / 2
        outWidth = width / 2
    }

    var inputSize: Int { channels * height * width }
    var outputSize: Int { channels * outHeight * outWidth }
    var parameterShapes: [(name: String, shape: [Int], fanIn: Int?)] { [] }

    func reserve(batchCapacity: Int) { argmax.reserve(batchCapacity * outputSize) }

    func forward(
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

    func backward(
        parameters: UnsafePointer<Float>, input: UnsafePointer<Float>, output: UnsafePointer<Float>,
        outputGradient: UnsafeMutablePointer<Float>, inputGradient: UnsafeMutablePointer<Float>?,
        parameterGradient: UnsafeMutablePointer<Float>, batch: Int
    ) {
        guard let inputGradient else { return }
        // Windows do not overlap, so each input gets written once: the window's maximum receives the
        // gradient, the other three zero; the rows and columns that no window covers are zeroed.
        let indices = argmax.pointer
        var out = 0
        for plane in 0..<(channels * batch) {
            let base = plane &* height &* width
            for y in 0..<outHeight {
                let top = base &+ 2 &* y &* width
                let upper = inputGradient + top, lower = upper + width
                for x in 0..<outWidth {
                    let a = 2 &* x
                    let best = Int(indices[out]) &- top
                    let gradient = outputGradient[out]
                    upper[a] = best == a ? gradient : 0
                    upper[a + 1] = best == a &+ 1 ? gradient : 0
                    lower[a] = best == a &+ width ? gradient : 0
                    lower[a + 1] = best == a &+ width &+ 1 ? gradient : 0
                    out &+= 1
                }
                if width % 2 == 1 {
                    upper[width - 1] = 0
                    lower[width - 1] = 0
                }
            }
            if height % 2 == 1 { (inputGradient + base + (height - 1) * width).update(repeating: 0, count: width) }
        }
    }
}

/// Reorders CNHW activations `[channels][batch][spatial]` into rows `[batch][channels*spatial]` for the
/// dense layers (and back in backward).
final class FlattenLayer: Layer {
    let channels: Int, spatial: Int

    init(channels: Int, spatial: Int) {
        self.channels = channels
        self.spatial = spatial
    }

    var inputSize: Int { channels * spatial }
    var outputSize: Int { channels * spatial }
    var parameterShapes: [(name: String, shape: [Int], fanIn: Int?)] { [] }
    func reserve(batchCapacity: Int) {}

    func forward(
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

    func backward(
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
