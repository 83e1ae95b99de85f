/// One stage of a feed-forward network, working on a whole mini-batch through raw pointers.
///
/// A layer owns no parameters: it reads its slice of the model's flat buffer (`parameters` points at the
/// layer's first parameter) and writes its gradient into the same slice of the gradient buffer. Layers
/// may own scratch (im2col columns, max-pool indices), sized by `reserve(batchCapacity:)`, so they are
/// not thread-safe.
public protocol Layer: AnyObject {
    /// Values per sample going in and coming out.
    var inputSize: Int { get }
    var outputSize: Int { get }
    /// This layer's tensors, names relative to the layer, with the fan-in used to initialise them
    /// (`nil` for tensors initialised to zero, such as biases).
    var parameterShapes: [(name: String, shape: [Int], fanIn: Int?)] { get }

    /// Makes room for batches of up to `batchCapacity` samples.
    func reserve(batchCapacity: Int)

    /// Computes `output` (`batch * outputSize`) from `input` (`batch * inputSize`).
    func forward(
        parameters: UnsafePointer<Float>, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        batch: Int)

    /// Back-propagates `outputGradient` right after `forward` on the same input.
    ///
    /// - Parameters:
    ///   - outputGradient: dLoss/dOutput; the layer may overwrite it (a fused ReLU masks it in place).
    ///   - inputGradient: where dLoss/dInput goes, or `nil` when nobody needs it (the first layer).
    ///   - parameterGradient: where dLoss/dParameters goes (overwritten, not accumulated).
    func backward(
        parameters: UnsafePointer<Float>, input: UnsafePointer<Float>, output: UnsafePointer<Float>,
        outputGradient: UnsafeMutablePointer<Float>, inputGradient: UnsafeMutablePointer<Float>?,
        parameterGradient: UnsafeMutablePointer<Float>, batch: Int)
}

extension Layer {
    public var parameterCount: Int { parameterShapes.reduce(0) { $0 + $1.shape.reduce(1, *) } }
}

/// A growable scratch buffer that is reused across batches: it reallocates only when asked for more.
// Not thread-safe: owned by one layer or model, which is used by one thread at a time.
final class ScratchBuffer<Element> {
    private(set) var pointer: UnsafeMutablePointer<Element>
    private(set) var capacity: Int
    private let zero: Element

    init(zero: Element) {
        self.zero = zero
        capacity = 0
        pointer = .allocate(capacity: 1)
    }

    /// Makes sure at least `count` elements are available (their values are unspecified).
    func reserve(_ count: Int) {
        guard count > capacity else { return }
        pointer.deallocate()
        pointer = .allocate(capacity: count)
        pointer.initialize(repeating: zero, count: count)
        capacity = count
    }

    deinit { pointer.deallocate() }
}

/// Adds `bias[row]`-style or `bias[column]`-style biases and applies ReLU, in one pass.
@inline(__always)
func addBiasAndActivate(
    _ values: UnsafeMutablePointer<Float>, rows: Int, columns: Int, bias: UnsafePointer<Float>,
    biasPerRow: Bool, relu: Bool
) {
    for row in 0..<rows {
        let line = values + row * columns
        if biasPerRow {
            let b = bias[row]
            if relu {
                for column in 0..<columns { line[column] = max(line[column] + b, 0) }
            } else {
                for column in 0..<columns { line[column] += b }
            }
        } else if relu {
            for column in 0..<columns { line[column] = max(line[column] + bias[column], 0) }
        } else {
            for column in 0..<columns { line[column] += bias[column] }
        }
    }
}

/// Zeroes `gradient` where the ReLU output was not positive.
@inline(__always)
func maskReLUGradient(_ gradient: UnsafeMutablePointer<Float>, output: UnsafePointer<Float>, count: Int) {
    for index in 0..<count { gradient[index] = output[index] > 0 ? gradient[index] : 0 }
}

/// Zeroes each row's gradient where the ReLU output was not positive (when `relu`), and writes each row's
/// sum into `sums`: the bias gradient of a layer whose bias is per row. Vectorised by hand, since a
/// Float sum is otherwise kept in strict order and runs one element at a time.
func maskAndSumRows(
    _ gradient: UnsafeMutablePointer<Float>, output: UnsafePointer<Float>, rows: Int, columns: Int, relu: Bool,
    sums: UnsafeMutablePointer<Float>
) {
    typealias Vector = SIMD16<Float>
    let width = Vector.scalarCount
    for row in 0..<rows {
        let line = gradient + row * columns
        let outputs = output + row * columns
        var accumulator = Vector()
        var column = 0
        while column + width <= columns {
            var values = UnsafeRawPointer(line + column).loadUnaligned(as: Vector.self)
            if relu {
                let activations = UnsafeRawPointer(outputs + column).loadUnaligned(as: Vector.self)
                values.replace(with: 0, where: activations .<= 0)
                UnsafeMutableRawPointer(line + column).storeBytes(of: values, as: Vector.self)
            }
            accumulator += values
            column += width
        }
        var sum = accumulator.sum()
        while column < columns {
            if relu && outputs[column] <= 0 { line[column] = 0 }
            sum += line[column]
            column += 1
        }
        sums[row] = sum
    }
}
