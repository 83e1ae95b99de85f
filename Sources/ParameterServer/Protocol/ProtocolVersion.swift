/// The version of the wire protocol this build speaks; a peer with another is refused in plain words.
public enum ProtocolVersion {
    public static let current: UInt32 = 1
}
