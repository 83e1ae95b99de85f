/// What a pushed update holds.
public enum UpdateKind: Sendable, Equatable {
    /// A mean gradient over the unit's samples (one local step): the server's optimiser applies it.
    case gradient
    /// The change in parameters after several local steps: the server adds it, scaled.
    case delta
}
