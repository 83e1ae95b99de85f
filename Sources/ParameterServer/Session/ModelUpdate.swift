/// An update for the model to apply, as the session coordinator hands it over: what a `ServerModel`
/// (of any family) sees of the session.
public struct ModelUpdate: Sendable {
    /// What an update holds.
    public enum Kind: Sendable, Equatable {
        /// A mean gradient over the unit's samples (one local step): the server's optimiser applies it.
        case gradient
        /// The change in parameters after several local steps: the outer optimiser takes its negative
        /// as a pseudo-gradient.
        case delta
    }

    public var values: [Float]
    public var kind: Kind
    /// Multiplies the learning rate (gradients) or the delta (deltas): 1 except under `inverse`.
    public var scale: Float
    public var sampleCount: Int
    /// Workers whose updates arrive one by one now: what an outer optimiser averages deltas over
    /// (the active workers in async and ssp; 1 for a sync round, already averaged).
    public var arrivalsPerStep = 1
    /// The pushes the update is made of, by unit and worker: one in async and ssp modes, a round's in
    /// sync mode. In a sharded session `values` is empty and the shards apply these pushes' slices.
    public var sources: [Source] = []

    /// One push taken into an update.
    public struct Source: Sendable, Equatable {
        public var unitID: UInt64
        public var worker: WorkerID
        public var sampleCount: Int

        public init(unitID: UInt64, worker: WorkerID, sampleCount: Int) {
            self.unitID = unitID
            self.worker = worker
            self.sampleCount = sampleCount
        }
    }

    public init(values: [Float], kind: Kind, scale: Float = 1, sampleCount: Int, arrivalsPerStep: Int = 1, sources: [Source] = []) {
        self.values = values
        self.kind = kind
        self.scale = scale
        self.sampleCount = sampleCount
        self.arrivalsPerStep = arrivalsPerStep
        self.sources = sources
    }
}
