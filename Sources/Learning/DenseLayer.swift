/// A fully connected layer, `Y = X W + b`, optionally followed by a fused ReLU.
///
/// Layout: input `[batch][inputs]`, weight `[inputs][outputs]`, bias `[outputs]`, output `[batch][outputs]`.
public final class DenseLayer: Layer {
    public let inputSize: Int
    public let outputSize: Int
    public let relu: Bool

    public init(inputs: Int, outputs: Int, relu: Bool) {
        inputSize = inputs
        outputSize = outputs
        self.relu = relu
    }

    public var parameterShapes: [(name: String, shape: [Int], fanIn: Int?)] {
        [("weight", [inputSize, outputSize], inputSize), ("bias", [outputSize], nil)]
    }

    public func reserve(batchCapacity: Int) {}

    public func forward(
        parameters: UnsafePointer<Float>, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        batch: Int
    ) {
        BLAS.sgemm(
            transposeA: false, transposeB: false, m: batch, n: outputSize, k: inputSize,
            alpha: 1, a: input, lda: inputSize, b: parameters, ldb: outputSize, beta: 0, c: output, ldc: outputSize)
        addBiasAndActivate(
            output, rows: batch, columns: outputSize, bias: parameters + inputSize * outputSize,
            biasPerRow: false, relu: relu)
    }

    public func backward(
        parameters: UnsafePointer<Float>, input: UnsafePointer<Float>, output: UnsafePointer<Float>,
        outputGradient: UnsafeMutablePointer<Float>, inputGradient: UnsafeMutablePointer<Float>?,
        parameterGradient: UnsafeMutablePointer<Float>, batch: Int
    ) {
        if relu { maskReLUGradient(outputGradient, output: output, count: batch * outputSize) }
        // dW = X^T dY
        BLAS.sgemm(
            transposeA: true, transposeB: false, m: inputSize, n: outputSize, k: batch,
            alpha: 1, a: input, lda: inputSize, b: outputGradient, ldb: outputSize,
            beta: 0, c: parameterGradient, ldc: outputSize)
        // db = column sums of dY
        let biasGradient = parameterGradient + inputSize * outputSize
        biasGradient.update(from: outputGradient, count: outputSize)
        for row in 1..<max(batch, 1) {
            let line = outputGradient + row * outputSize
            for column in 0..<outputSize { biasGradient[column] += line[column] }
        }
        // dX = dY W^T
        if let inputGradient {
            BLAS.sgemm(
                transposeA: false, transposeB: true, m: batch, n: inputSize, k: outputSize,
                alpha: 1, a: outputGradient, lda: outputSize, b: parameters, ldb: outputSize,
                beta: 0, c: inputGradient, ldc: inputSize)
        }
    }
}
