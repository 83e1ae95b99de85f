import Learning
import ParameterServer

/// A ten-parameter model (4 inputs, 2 classes, no hidden layer): enough for the server to hand out
/// work and apply updates, cheap enough to leave every fuzz input's time to the connection handling.
final class TinyServerModel: ServerModel, @unchecked Sendable {
    // Why @unchecked Sendable is safe: `parameters` changes only in `apply`, on the server's loop
    // thread; `evaluate` reads nothing of the model.

    let configuration = ModelConfiguration(family: "tiny")
    let layout = [TensorView(name: "dense0.weight", shape: [4, 2], offset: 0), TensorView(name: "dense0.bias", shape: [2], offset: 8)]

    private(set) var parameters = [Float](repeating: 0, count: 10)

    func apply(_ update: ModelUpdate) {
        for index in parameters.indices { parameters[index] -= 0.01 * update.scale * update.values[index] }
    }

    func evaluate(parameters: [Float]) -> (loss: Double, accuracy: Double) {
        (1, 0.5)
    }

    // The fuzzed server writes no checkpoints; these keep the protocol's contract all the same.
    func trainingState() -> ModelTrainingState {
        ModelTrainingState(parameters: parameters, optimizer: OptimizerState(kind: "sgd"), scheduleStep: 0)
    }

    func restore(_ state: ModelTrainingState) throws(ModelStateError) {
        guard state.parameters.count == parameters.count else { throw ModelStateError("wrong parameter count") }
        parameters = state.parameters
    }
}
