/// Why bytes could not be decoded as a message.
///
/// Decoding is total: every malformed input ends in one of these errors, never in a trap.
public enum WireDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The input ended in the middle of a tag or a value.
    case truncated
    /// A varint ran past ten bytes, the most that 64 bits need.
    case overlongVarint
    /// A tag carried field number 0 or a number above ``WireFormat/maxFieldNumber``.
    case invalidFieldNumber(UInt64)
    /// A tag carried wire type 6 or 7, which do not exist.
    case invalidWireType(UInt8)
    /// A known field arrived with a wire type its declared type cannot have.
    case wrongWireType(fieldNumber: Int, wireType: WireType)
    /// A length prefix pointed past the end of the enclosing message or input.
    case lengthPastEnd(length: UInt64, available: Int)
    /// A string field held bytes that are not valid UTF-8.
    case invalidUTF8(fieldNumber: Int)
    /// Messages (or groups) were nested deeper than ``WireDecodingOptions/maxDepth``.
    case nestingTooDeep(limit: Int)
    /// A packed field of fixed-width elements whose length is not a multiple of the element width.
    case malformedPackedField(fieldNumber: Int, length: Int)
    /// An end-group tag with no matching start, or a group ended by the wrong field number.
    case unmatchedEndGroup(fieldNumber: Int)

    public var description: String {
        switch self {
        case .truncated:
            "input ended in the middle of a field"
        case .overlongVarint:
            "varint longer than \(WireFormat.maxVarintLength) bytes"
        case .invalidFieldNumber(let number):
            "field number \(number) is out of range 1...\(WireFormat.maxFieldNumber)"
        case .invalidWireType(let raw):
            "wire type \(raw) does not exist"
        case .wrongWireType(let fieldNumber, let wireType):
            "field \(fieldNumber) cannot have wire type \(wireType)"
        case .lengthPastEnd(let length, let available):
            "length \(length) runs past the end (\(available) bytes left)"
        case .invalidUTF8(let fieldNumber):
            "string field \(fieldNumber) is not valid UTF-8"
        case .nestingTooDeep(let limit):
            "messages nested deeper than \(limit)"
        case .malformedPackedField(let fieldNumber, let length):
            "packed field \(fieldNumber) has length \(length), not a multiple of its element size"
        case .unmatchedEndGroup(let fieldNumber):
            "end-group tag for field \(fieldNumber) does not match an open group"
        }
    }
}

/// Limits and choices for decoding.
public struct WireDecodingOptions: Hashable, Sendable {
    /// How deep messages may nest inside one another (the top-level message is depth 0).
    public var maxDepth: Int
    /// Whether to drop fields this schema does not know instead of keeping them for re-encoding.
    public var discardUnknownFields: Bool

    /// Creates decoding options.
    ///
    /// - Parameters:
    ///   - maxDepth: How deep messages may nest; 64 by default, as in protobuf's C++ runtime (100 there).
    ///   - discardUnknownFields: Whether to drop unknown fields; `false` keeps them.
    @inlinable
    public init(maxDepth: Int = 64, discardUnknownFields: Bool = false) {
        self.maxDepth = maxDepth
        self.discardUnknownFields = discardUnknownFields
    }
}
