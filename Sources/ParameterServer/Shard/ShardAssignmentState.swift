import Learning
import Messages
import TensorEncoding

/// What a shard holds for one session: its range of the parameters with the session's optimiser,
/// the version, the encodings and ticket key workers are checked against, the slices staged, and the
/// figures `ShardState` reports. Made from a `ShardAssignment` that passed every check.
final class ShardAssignmentState {
    let sessionID: String
    let range: ShardMap.Range
    let shardCount: Int
    /// The whole model, its configuration and parameter count.
    let model: ModelConfiguration
    let modelParameterCount: Int
    let recipe: SessionRecipe
    let ticketKey: [UInt8]
    /// The session's encodings, parsed as the server parses them (for the whole model's length, so
    /// they compare equal to what its Welcome gave workers).
    let pushEncoding: TensorEncoding
    let pullEncoding: TensorEncoding
    let deltaEncoding: TensorEncoding?
    var store: ParameterStore
    var version: UInt64
    var publisher: WeightsPublisher
    /// Slices pushed and not yet applied or discarded, by worker id, then unit id.
    var staged: [UInt64: [UInt64: StagedSlice]] = [:]
    /// Workers the server said left the session (a `ShardDiscard` of all their slices): their slices and
    /// joins are refused from then on.
    var departed: Set<UInt64> = []
    /// Where a `ShardApply` of several slices is averaged: one buffer, not an array per update.
    var mean: [Float] = []
    // Figures since the assignment (`ShardState`).
    var updates: UInt64 = 0
    var refused: UInt64 = 0
    var stalenessSum: UInt64 = 0
    var stalenessCount: UInt64 = 0
    var stalenessMax: UInt64 = 0

    /// A slice of a unit's update, kept until the server applies or discards it.
    struct StagedSlice {
        var values: [Float]
        /// The version of the weights it was computed on, for its staleness when applied.
        var baseVersion: UInt64
    }

    /// Checks `message` and builds the range's state from it.
    /// - Throws: ``ShardAssignmentError`` naming the first field that is wrong.
    init(_ message: ShardAssignment) throws(ShardAssignmentError) {
        func wrong(_ field: String, _ reason: String) -> ShardAssignmentError { ShardAssignmentError(field: field, reason: reason) }
        guard !message.sessionID.isEmpty else { throw wrong("session_id", "is empty") }
        guard let spec = message.model, spec.parameterCount > 0, spec.parameterCount <= UInt64(Int32.max) else {
            throw wrong("model", "is missing or has no parameters")
        }
        let parameterCount = Int(spec.parameterCount)
        guard message.shardCount >= 1, message.index < message.shardCount else {
            throw wrong("index", "\(message.index) is not a place in a map of \(message.shardCount) shard(s)")
        }
        guard message.count >= 1, message.offset < spec.parameterCount, message.count <= spec.parameterCount - message.offset else {
            throw wrong("count", "parameters \(message.offset) + \(message.count) are not a range of the model's \(parameterCount)")
        }
        let range = ShardMap.Range(index: Int(message.index), offset: Int(message.offset), count: Int(message.count))
        let recipe: SessionRecipe
        do {
            recipe = try SessionRecipe(wireBytes: message.sessionSettings)
        } catch {
            throw wrong("session_settings", "\(error)")
        }
        guard recipe.model.description == spec.modelConfiguration.description else {
            throw wrong("session_settings", "names the model \(recipe.model); ShardAssignment.model is \(spec.modelConfiguration)")
        }
        // The encodings exactly as the server derives them from the recipe, with its checks.
        let session: ServerConfiguration
        do {
            session = try ServerConfiguration(recipe: recipe, settings: ServerSettings(), parameterCount: parameterCount)
        } catch {
            throw wrong("session_settings", "\(error)")
        }
        guard message.ticketKey.count == ShardTicket.keyLength else {
            throw wrong("ticket_key", "has \(message.ticketKey.count) bytes, expected \(ShardTicket.keyLength)")
        }
        let state: ModelTrainingState
        do {
            state = try ModelTrainingState(wireBytes: message.modelState)
        } catch {
            throw wrong("model_state", "\(error)")
        }
        guard state.parameters.count == range.count else {
            throw wrong("model_state", "holds \(state.parameters.count) parameters; the range holds \(range.count)")
        }
        let (optimizer, schedule) = recipe.makeOptimizer()
        var store = ParameterStore(parameters: state.parameters, optimizer: optimizer, schedule: schedule, totalSteps: recipe.scheduleSteps)
        do {
            try store.restore(state)
        } catch {
            throw wrong("model_state", "does not fit the session's \(recipe.optimizer.rawValue) optimiser: \(error)")
        }
        sessionID = message.sessionID
        self.range = range
        shardCount = Int(message.shardCount)
        model = spec.modelConfiguration
        modelParameterCount = parameterCount
        self.recipe = recipe
        ticketKey = message.ticketKey
        pushEncoding = session.pushEncoding
        pullEncoding = session.pullEncoding
        deltaEncoding = session.deltaEncoding
        self.store = store
        version = message.version
        publisher = WeightsPublisher(
            count: range.count, pullEncoding: session.pullEncoding, deltaEncoding: session.deltaEncoding,
            strideAllowed: recipe.policy.pullsMayLag, localSteps: recipe.localSteps)
    }

    /// Slices staged now, over every worker.
    var stagedCount: Int { staged.values.reduce(0) { $0 + $1.count } }

    /// The range as a log line: `range 0 of 2: parameters 0..<203525 of mlp:512`.
    var summary: String {
        "range \(range.index) of \(shardCount): parameters \(range.offset)..<\(range.offset + range.count) of \(model)"
    }
}

/// A `ShardAssignment` the shard cannot take, and which field says so.
struct ShardAssignmentError: Error, CustomStringConvertible {
    let field: String
    let reason: String

    var description: String { "ShardAssignment.\(field): \(reason)" }
}
