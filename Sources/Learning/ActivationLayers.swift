import FoundationEssentials
import Glibc

/// A parameterless layer that applies one function to every value: conform with the function and its
/// derivative, and the layer's plumbing (sizes, forward, backward) comes with the protocol.
///
/// ```swift
/// final class Softsign: ElementwiseActivation {
///     let size: Int
///     init(size: Int) { self.size = size }
///     func activate(_ x: Float) -> Float { x / (1 + abs(x)) }
///     func derivative(input x: Float, output y: Float) -> Float { (1 - abs(y)) * (1 - abs(y)) }
/// }
/// ```
public protocol ElementwiseActivation: Layer {
    /// Values per sample, in and out.
    var size: Int { get }
    /// f(x).
    func activate(_ x: Float) -> Float
    /// f'(x), given both x and f(x) (whichever is cheaper to use).
    func derivative(input x: Float, output y: Float) -> Float
}

extension ElementwiseActivation {
    public var inputSize: Int { size }
    public var outputSize: Int { size }
    public var parameterShapes: [(name: String, shape: [Int], fanIn: Int?)] { [] }

    public func reserve(batchCapacity: Int) {}

    public func forward(
        parameters: UnsafePointer<Float>, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        batch: Int
    ) {
        for index in 0..<(batch * size) { output[index] = activate(input[index]) }
    }

    public func backward(
        parameters: UnsafePointer<Float>, input: UnsafePointer<Float>, output: UnsafePointer<Float>,
        outputGradient: UnsafeMutablePointer<Float>, inputGradient: UnsafeMutablePointer<Float>?,
        parameterGradient: UnsafeMutablePointer<Float>, batch: Int
    ) {
        guard let inputGradient else { return }
        for index in 0..<(batch * size) {
            inputGradient[index] = outputGradient[index] * derivative(input: input[index], output: output[index])
        }
    }
}

/// `max(x, 0)` element-wise, as a layer of its own (dense and convolution layers can also fuse it).
public final class ReLULayer: ElementwiseActivation {
    public let size: Int

    public init(size: Int) {
        self.size = size
    }

    public func activate(_ x: Float) -> Float { max(x, 0) }
    public func derivative(input x: Float, output y: Float) -> Float { y > 0 ? 1 : 0 }
}

/// `tanh(x)` element-wise.
public final class TanhLayer: ElementwiseActivation {
    public let size: Int

    public init(size: Int) {
        self.size = size
    }

    public func activate(_ x: Float) -> Float { tanhf(x) }
    // 1 - tanh(x)^2, from the output forward computed.
    public func derivative(input x: Float, output y: Float) -> Float { 1 - y * y }
}
