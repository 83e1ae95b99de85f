import Learning
import ParameterServer

/// A synthetic server model for `ps-bench fleet`: one flat tensor of `parameterCount` floats and a
/// real optimiser step on every update, so the server does the work it does in training; evaluation
/// is free, since there is no test set.
final class FleetServerModel: ServerModel, @unchecked Sendable {
    // Why @unchecked Sendable is safe: `parameters` and `optimizer` are touched only by `apply` and the
    // `parameters` getter, which the runtime calls on its event loop; `evaluate` reads nothing of self.

    let configuration = ModelConfiguration(family: "fleet")
    let layout: [TensorView]
    private(set) var parameters: [Float]
    private var optimizer = SGD(momentum: 0.5)
    /// Small enough that a constant gradient keeps the parameters finite for billions of steps.
    private let learningRate: Float = 1e-4

    /// Creates the model with parameters 0.01, 0.02, ... (finite, not all equal).
    init(parameterCount: Int) {
        layout = [TensorView(name: "weights", shape: [parameterCount], offset: 0)]
        parameters = (0..<parameterCount).map { Float($0 % 100 + 1) / 100 }
    }

    func apply(_ update: ModelUpdate) {
        parameters.withUnsafeMutableBufferPointer { p in
            update.values.withUnsafeBufferPointer { g in
                optimizer.step(parameters: p, gradient: g, learningRate: learningRate * update.scale)
            }
        }
    }

    func evaluate(parameters: [Float]) -> (loss: Double, accuracy: Double) {
        (loss: 0, accuracy: 0)
    }

    func trainingState() -> ModelTrainingState {
        ModelTrainingState(parameters: parameters, optimizer: optimizer.state, scheduleStep: 0)
    }

    func restore(_ state: ModelTrainingState) throws(ModelStateError) {
        guard state.parameters.count == parameters.count else { throw ModelStateError("wrong parameter count") }
        do { try optimizer.restore(state.optimizer, parameterCount: parameters.count) } catch {
            throw ModelStateError(error.description)
        }
        parameters = state.parameters
    }
}
