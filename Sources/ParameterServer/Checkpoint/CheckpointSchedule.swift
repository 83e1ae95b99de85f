/// Where a server writes its checkpoints, how often, and the recipe they record.
public struct CheckpointSchedule: Sendable {
    /// The checkpoint file; each write replaces it atomically.
    public var path: String
    /// A checkpoint after this many applied updates since the last one.
    public var everyUpdates: Int
    /// And one at least this often while updates are being applied.
    public var interval: Duration
    /// The session's settings, recorded in every checkpoint for `--resume`.
    public var recipe: SessionRecipe

    public init(path: String, everyUpdates: Int, interval: Duration, recipe: SessionRecipe) {
        precondition(everyUpdates >= 1, "checkpoint at least every update")
        self.path = path
        self.everyUpdates = everyUpdates
        self.interval = interval
        self.recipe = recipe
    }
}
