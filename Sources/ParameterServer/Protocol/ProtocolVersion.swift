/// The version of the wire protocol this build speaks; a peer with another is refused in plain words.
public enum ProtocolVersion {
    public static let current: UInt32 = 1

    /// The version a `ps-shard` states in `ShardHello`: what a shard and its server must agree on
    /// beyond the workers' protocol. 2 since delayed Nesterov's step grows beyond four workers: a
    /// shard of version 1 would apply those deltas without the gain, on its range only, with no error.
    public static let shard: UInt32 = 2
}
