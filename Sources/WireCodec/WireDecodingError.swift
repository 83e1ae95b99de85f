/// Why bytes could not be decoded as a message, and where.
///
/// Decoding is total: every malformed input ends in one of these errors, never in a trap. An error
/// says what was wrong (``reason``), at which byte of the input (``offset``), in which field
/// (``field``) and, for generated messages, in which message (``messageName``), so that a refusal
/// sent to a peer or written to a log can be acted on:
///
/// ```
/// length past the end: field 6 (length-delimited) in downpour.Push at offset 1234 needs 400 bytes, 12 remain
/// ```
///
/// Match on the reason to tell failures apart:
///
/// ```swift
/// do {
///     envelope = try Envelope(serializedBytes: payload)
/// } catch let error as WireDecodingError where error.reason == .invalidUTF8 {
///     ...
/// }
/// ```
public struct WireDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was wrong with the input.
    public enum Reason: Hashable, Sendable {
        /// A fixed-width value was cut off: it needs `needed` bytes, and the message or input has only
        /// `remaining` left.
        case truncated(needed: Int, remaining: Int)
        /// A tag, varint value or length prefix was cut off: every one of the `remaining` bytes left
        /// has the continuation bit set.
        case truncatedVarint(remaining: Int)
        /// A length prefix of `length` bytes runs past the end of the enclosing message or input,
        /// which has `remaining` bytes after the prefix.
        case lengthPastEnd(length: UInt64, remaining: Int)
        /// A group was still open when its enclosing message or the input ended.
        case unterminatedGroup
        /// A varint value or length ran past ten bytes, the most that 64 bits need.
        case overlongVarint
        /// A tag ran past ``WireFormat/maxTagLength`` bytes, as a tag padded with `0x80` bytes does.
        case overlongTag
        /// A tag carried field number 0, or a number that needs more than the 32 bits a tag has.
        case invalidFieldNumber(UInt64)
        /// A tag carried wire type 6 or 7, which do not exist.
        case invalidWireType(UInt8)
        /// A string held bytes that are not valid UTF-8; ``WireDecodingError/offset`` is the first of them.
        case invalidUTF8
        /// Messages or groups were nested deeper than ``WireDecodingOptions/maxDepth``.
        case nestingTooDeep(limit: Int)
        /// A packed field of fixed-width elements whose length is not a multiple of the element size.
        case malformedPackedField(length: Int, elementSize: Int)
        /// An end-group tag for field `fieldNumber` that closes no open group, or closes a group that
        /// another field number opened.
        case unmatchedEndGroup(fieldNumber: Int)
    }

    /// What was wrong.
    public var reason: Reason
    /// Where in the input it was: the first byte of the malformed tag, length prefix or value (for
    /// ``Reason/invalidUTF8``, the first invalid byte), counted from the start of the bytes being
    /// decoded, so nested messages report offsets in the whole input.
    public var offset: Int
    /// The tag of the field being decoded, as the message named by ``messageName`` sees it: a map
    /// field for an error inside one of its entries, an unknown group for an error inside the group.
    /// `nil` when the malformed bytes are a field's own tag.
    public var field: WireTag?
    /// The protobuf name of the message being decoded, such as `downpour.Push`; generated messages
    /// supply it, hand-written ``WireMessage`` conformances may not.
    public var messageName: String?

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - reason: What was wrong.
    ///   - offset: The offset of the malformed bytes in the input.
    ///   - field: The tag of the field being decoded, if any.
    ///   - messageName: The protobuf name of the message being decoded, if known.
    @inlinable
    public init(_ reason: Reason, offset: Int, field: WireTag? = nil, messageName: String? = nil) {
        self.reason = reason
        self.offset = offset
        self.field = field
        self.messageName = messageName
    }

    /// The same error, attributed to the message `name` unless a message nested in it already
    /// claimed it. Generated `merge(from:)` implementations call this as an error leaves them, so the
    /// innermost message names itself.
    ///
    /// - Parameter name: The message's protobuf name, such as `downpour.Push`.
    /// - Returns: The error with ``messageName`` set.
    @inlinable
    public func inMessage(_ name: String) -> WireDecodingError {
        if messageName != nil { return self }
        var error = self
        error.messageName = name
        return error
    }

    public var description: String {
        var subject = field.map { "field \($0.fieldNumber) (\($0.wireType))" } ?? "tag"
        if let messageName { subject += " in \(messageName)" }
        let at = "at offset \(offset)"
        switch reason {
        case .truncated(let needed, let remaining):
            return "truncated: \(subject) \(at) needs \(needed) bytes, \(Self.remain(remaining))"
        case .truncatedVarint(let remaining):
            let left = remaining == 1 ? "the 1 byte that remains" : "the \(remaining) bytes that remain"
            return "truncated: \(subject) \(at) is a varint longer than \(left)"
        case .lengthPastEnd(let length, let remaining):
            return "length past the end: \(subject) \(at) needs \(length) bytes, \(Self.remain(remaining))"
        case .unterminatedGroup:
            return "unterminated group: \(subject) \(at) starts a group that is still open where the input ends"
        case .overlongVarint:
            return "overlong varint: \(subject) \(at) runs past \(WireFormat.maxVarintLength) bytes"
        case .overlongTag:
            return "overlong tag: \(subject) \(at) runs past \(WireFormat.maxTagLength) bytes"
        case .invalidFieldNumber(let number):
            return "invalid field number: \(subject) \(at) carries field number \(number), outside 1...\(WireFormat.maxFieldNumber)"
        case .invalidWireType(let raw):
            return "invalid wire type: \(subject) \(at) carries wire type \(raw), which does not exist"
        case .invalidUTF8:
            return "invalid UTF-8: \(subject) has a byte \(at) that is not part of valid UTF-8"
        case .nestingTooDeep(let limit):
            return "nesting too deep: \(subject) \(at) nests messages or groups deeper than \(limit)"
        case .malformedPackedField(let length, let elementSize):
            return "malformed packed field: \(subject) \(at) has length \(length), not a multiple of \(elementSize)"
        case .unmatchedEndGroup(let number):
            return "unmatched end-group: \(subject) \(at) ends group \(number), which is not open"
        }
    }

    private static func remain(_ count: Int) -> String {
        count == 1 ? "1 remains" : "\(count) remain"
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
    ///   - maxDepth: How deep messages may nest; 64 by default (protobuf's C++ runtime allows 100).
    ///   - discardUnknownFields: Whether to drop unknown fields; `false` keeps them.
    @inlinable
    public init(maxDepth: Int = 64, discardUnknownFields: Bool = false) {
        self.maxDepth = maxDepth
        self.discardUnknownFields = discardUnknownFields
    }
}
