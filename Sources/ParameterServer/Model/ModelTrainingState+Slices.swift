import CheckpointFormat
import Learning
import WireCodec

extension ModelTrainingState {
    /// The state of parameters `range` only: their values and optimiser buffers, with the schedule
    /// and the optimiser's step count as they are (every optimiser here works element by element, so
    /// a range steps exactly as it would within the whole buffer).
    public func slice(_ range: Range<Int>) -> ModelTrainingState {
        var optimizer = self.optimizer
        optimizer.buffers = optimizer.buffers.mapValues { Array($0[range]) }
        return ModelTrainingState(parameters: Array(parameters[range]), optimizer: optimizer, scheduleStep: scheduleStep)
    }

    /// The whole state put back together from the states of consecutive ranges, in order.
    /// - Throws: `ModelStateError` when the parts disagree on the optimiser, its buffers or the schedule.
    public static func joined(_ parts: [ModelTrainingState]) throws(ModelStateError) -> ModelTrainingState {
        guard let first = parts.first else { throw ModelStateError("no parts to join") }
        var parameters: [Float] = []
        parameters.reserveCapacity(parts.reduce(0) { $0 + $1.parameters.count })
        var buffers: [String: [Float]] = [:]
        let names = Set(first.optimizer.buffers.keys)
        for (position, part) in parts.enumerated() {
            guard part.optimizer.kind == first.optimizer.kind, part.optimizer.stepCount == first.optimizer.stepCount,
                  part.scheduleStep == first.scheduleStep, Set(part.optimizer.buffers.keys) == names else {
                throw ModelStateError("part \(position) is at schedule step \(part.scheduleStep) with \(part.optimizer.kind) "
                    + "state \(part.optimizer.buffers.keys.sorted()); part 0 at \(first.scheduleStep) with \(first.optimizer.kind) "
                    + "state \(first.optimizer.buffers.keys.sorted())")
            }
            parameters += part.parameters
            for (name, values) in part.optimizer.buffers { buffers[name, default: []] += values }
        }
        return ModelTrainingState(
            parameters: parameters,
            optimizer: OptimizerState(kind: first.optimizer.kind, buffers: buffers, stepCount: first.optimizer.stepCount),
            scheduleStep: first.scheduleStep)
    }

    /// The state as a `downpour.checkpoint.ModelState` message: the form checkpoints keep it in, and
    /// the bytes `ShardAssignment.model_state` and `ShardState.model_state` carry.
    var wire: ModelState {
        var state = ModelState()
        state.parameters = parameters
        state.scheduleStep = UInt64(scheduleStep)
        state.optimizerKind = optimizer.kind
        state.optimizerBuffers = optimizer.buffers.keys.sorted().map { name in
            var buffer = NamedBuffer()
            buffer.name = name
            buffer.values = optimizer.buffers[name]!
            return buffer
        }
        state.optimizerStepCount = UInt64(optimizer.stepCount)
        return state
    }

    /// Reads a `ModelState` message, checking that it is usable: finite parameters, and every
    /// optimiser buffer present once and as long as the parameters.
    init(wire state: ModelState) throws(ModelStateError) {
        let expected = state.parameters.count
        guard expected > 0 else { throw ModelStateError("no parameters") }
        guard state.parameters.allSatisfy(\.isFinite) else { throw ModelStateError("parameters that are not finite") }
        var buffers: [String: [Float]] = [:]
        for buffer in state.optimizerBuffers {
            guard buffers[buffer.name] == nil else { throw ModelStateError("optimiser buffer \(buffer.name) twice") }
            guard buffer.values.count == expected else {
                throw ModelStateError("optimiser buffer \(buffer.name) has \(buffer.values.count) values, expected \(expected)")
            }
            buffers[buffer.name] = buffer.values
        }
        self.init(
            parameters: state.parameters,
            optimizer: OptimizerState(kind: state.optimizerKind, buffers: buffers, stepCount: Int(clamping: state.optimizerStepCount)),
            scheduleStep: Int(clamping: state.scheduleStep))
    }

    /// The state as the bytes of a `ModelState` message.
    public func wireBytes() -> [UInt8] { wire.serializedBytes() }

    /// Reads the bytes of a `ModelState` message.
    /// - Throws: `ModelStateError` naming what is wrong.
    public init(wireBytes bytes: [UInt8]) throws(ModelStateError) {
        let state: ModelState
        do {
            state = try ModelState(serializedBytes: bytes)
        } catch {
            throw ModelStateError("not a ModelState message: \(error)")
        }
        try self.init(wire: state)
    }
}

extension SessionRecipe {
    /// The recipe as the bytes of a `downpour.checkpoint.SessionSettings` message
    /// (`ShardAssignment.session_settings`).
    public func wireBytes() -> [UInt8] { wire.serializedBytes() }

    /// Reads the bytes of a `SessionSettings` message.
    /// - Throws: `CheckpointError.invalidContents` naming what is wrong.
    public init(wireBytes bytes: [UInt8]) throws(CheckpointError) {
        let settings: SessionSettings
        do {
            settings = try SessionSettings(serializedBytes: bytes)
        } catch {
            throw .invalidContents("not a SessionSettings message: \(error)")
        }
        try self.init(wire: settings)
    }
}
