/// How a field's value is laid out on the wire: the low three bits of every field tag.
public enum WireType: UInt8, Sendable, Hashable, CustomStringConvertible {
    /// A base-128 varint: int32, int64, uint32, uint64, sint32, sint64, bool and enums.
    case varint = 0
    /// Eight little-endian bytes: fixed64, sfixed64 and double.
    case fixed64 = 1
    /// A varint length followed by that many bytes: string, bytes, messages and packed repeated fields.
    case lengthDelimited = 2
    /// The start of a proto2 group; proto3 never writes one, but decoders skip them as unknown fields.
    case startGroup = 3
    /// The end of a proto2 group.
    case endGroup = 4
    /// Four little-endian bytes: fixed32, sfixed32 and float.
    case fixed32 = 5

    public var description: String {
        switch self {
        case .varint: "varint"
        case .fixed64: "fixed64"
        case .lengthDelimited: "length-delimited"
        case .startGroup: "start-group"
        case .endGroup: "end-group"
        case .fixed32: "fixed32"
        }
    }
}

/// A decoded field tag: the field number and the wire type of the value that follows.
public struct WireTag: Hashable, Sendable {
    /// The tag as it was encoded: `fieldNumber << 3 | wireType`.
    public let rawValue: UInt32
    /// The field number, from 1 to ``WireFormat/maxFieldNumber``.
    public let fieldNumber: Int
    /// How the value that follows is laid out.
    public let wireType: WireType

    /// Creates a tag from a field number and wire type.
    ///
    /// - Parameters:
    ///   - fieldNumber: The field number, from 1 to ``WireFormat/maxFieldNumber``.
    ///   - wireType: How the value is laid out.
    @inlinable
    public init(fieldNumber: Int, wireType: WireType) {
        precondition(fieldNumber > 0 && fieldNumber <= WireFormat.maxFieldNumber, "field number out of range")
        self.rawValue = UInt32(truncatingIfNeeded: fieldNumber) << 3 | UInt32(wireType.rawValue)
        self.fieldNumber = fieldNumber
        self.wireType = wireType
    }

    /// Creates a tag from parts the reader has already checked.
    @inlinable
    init(rawValue: UInt32, fieldNumber: Int, wireType: WireType) {
        self.rawValue = rawValue
        self.fieldNumber = fieldNumber
        self.wireType = wireType
    }
}

/// Constants of the protobuf wire format.
public enum WireFormat {
    /// The largest field number a tag can carry: 2^29 - 1.
    public static let maxFieldNumber = 536_870_911
    /// Field numbers protobuf keeps for its own implementation; schemas may not use them.
    public static let reservedFieldNumbers: ClosedRange<Int> = 19_000...19_999
    /// The longest varint: ten bytes carry 64 bits.
    public static let maxVarintLength = 10
    /// The longest tag: five bytes carry its 32 bits. Google's protobuf refuses a longer one, so a
    /// tag padded with extra `0x80` bytes is refused here too rather than read differently.
    public static let maxTagLength = 5
}
