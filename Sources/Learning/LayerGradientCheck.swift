/// Checks a layer's `backward` against central differences of its `forward`: for anyone writing a
/// ``Layer`` of their own, and for Learning's tests of its own layers.
///
/// The objective is `sum(output * weights)` for random weights, in Double; the step is 1e-3 in Float,
/// so sizes should stay small (rounding is about 1e-4 here, far below the tolerance).
///
/// ```swift
/// let mismatches = LayerGradientCheck.run(MyLayer(size: 5), batch: 3)
/// assert(mismatches.isEmpty, "\(mismatches)")
/// ```
public enum LayerGradientCheck {
    /// One gradient entry that disagrees with its finite difference.
    public struct Mismatch: Sendable, CustomStringConvertible {
        /// `parameter 3` or `input 7`.
        public var entry: String
        public var analytic: Float
        public var numeric: Double

        public var description: String { "\(entry): backward gives \(analytic), finite differences \(numeric)" }
    }

    static let step: Float = 1e-3

    /// Whether `analytic` is close enough to `numeric` (absolute 2e-3 plus relative 2%).
    public static func agrees(_ analytic: Float, _ numeric: Double) -> Bool {
        abs(Double(analytic) - numeric) <= 2e-3 + 2e-2 * max(abs(numeric), Double(abs(analytic)))
    }

    /// Every parameter-gradient entry (and input-gradient entry, if `checkInputGradient`) that disagrees.
    /// - Parameter parameterScale: the spread of the random parameters and of the inputs' normal draw.
    public static func run(
        _ layer: any Layer, batch: Int, checkInputGradient: Bool = true, seed: UInt64 = 1, parameterScale: Double = 0.5
    ) -> [Mismatch] {
        var generator = Xoshiro256(seed: seed)
        var parameters = random(max(layer.parameterCount, 1), &generator, scale: parameterScale)
        var input = random(batch * layer.inputSize, &generator)
        let weights = random(batch * layer.outputSize, &generator)
        layer.reserve(batchCapacity: batch)

        func objective(_ parameters: [Float], _ input: [Float]) -> Double {
            var output = [Float](repeating: 0, count: batch * layer.outputSize)
            layer.forward(parameters: parameters, input: input, output: &output, batch: batch)
            return zip(output, weights).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }

        var output = [Float](repeating: 0, count: batch * layer.outputSize)
        layer.forward(parameters: parameters, input: input, output: &output, batch: batch)
        var outputGradient = weights
        var inputGradient = [Float](repeating: .nan, count: batch * layer.inputSize)
        var parameterGradient = [Float](repeating: .nan, count: max(layer.parameterCount, 1))
        inputGradient.withUnsafeMutableBufferPointer { inputGradientBuffer in
            layer.backward(
                parameters: parameters, input: input, output: output, outputGradient: &outputGradient,
                inputGradient: inputGradientBuffer.baseAddress!, parameterGradient: &parameterGradient, batch: batch)
        }

        var mismatches: [Mismatch] = []
        for index in 0..<layer.parameterCount {
            let numeric = centralDifference(&parameters, index) { objective($0, input) }
            if !agrees(parameterGradient[index], numeric) {
                mismatches.append(Mismatch(entry: "parameter \(index)", analytic: parameterGradient[index], numeric: numeric))
            }
        }
        guard checkInputGradient else { return mismatches }
        for index in 0..<input.count {
            let numeric = centralDifference(&input, index) { objective(parameters, $0) }
            if !agrees(inputGradient[index], numeric) {
                mismatches.append(Mismatch(entry: "input \(index)", analytic: inputGradient[index], numeric: numeric))
            }
        }
        return mismatches
    }

    /// Normal draws times `scale`.
    static func random(_ count: Int, _ generator: inout Xoshiro256, scale: Double = 1) -> [Float] {
        (0..<count).map { _ in Float(generator.nextNormal() * scale) }
    }

    /// (f(x + h e_i) - f(x - h e_i)) / 2h, leaving `values` as it was.
    static func centralDifference(_ values: inout [Float], _ index: Int, _ f: ([Float]) -> Double) -> Double {
        let saved = values[index]
        values[index] = saved + step
        let plus = f(values)
        values[index] = saved - step
        let minus = f(values)
        values[index] = saved
        return (plus - minus) / Double(2 * step)
    }
}
