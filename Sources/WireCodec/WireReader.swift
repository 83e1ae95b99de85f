/// Reads the protobuf wire format from borrowed bytes, checking every length against the bytes at hand.
///
/// Generated messages drive a reader through ``WireMessage/merge(from:)``; applications normally use
/// ``WireMessage/init(serializedBytes:options:)`` instead. A reader never traps and never allocates
/// from a length it has not checked against the remaining input.
///
/// - Warning: The reader borrows its bytes; they must stay valid and unchanged while it is in use.
public struct WireReader {
    @usableFromInline
    let bytes: UnsafeRawBufferPointer
    /// The next byte to read.
    @usableFromInline
    var position: Int
    /// Where the message being decoded ends: the input's end, or a nested message's end.
    @usableFromInline
    var end: Int
    /// How many messages enclose the one being decoded.
    @usableFromInline
    var depth: Int
    /// Where the last tag started, so an unknown field can be kept byte for byte.
    @usableFromInline
    var tagStart: Int
    /// The field number of the last tag, for error messages.
    @usableFromInline
    var fieldNumber: Int
    @usableFromInline
    let options: WireDecodingOptions

    /// Creates a reader over `bytes`.
    ///
    /// - Parameters:
    ///   - bytes: The encoded message; borrowed, not copied.
    ///   - options: Limits for decoding.
    @inlinable
    public init(bytes: UnsafeRawBufferPointer, options: WireDecodingOptions = WireDecodingOptions()) {
        self.bytes = bytes
        self.position = 0
        self.end = bytes.count
        self.depth = 0
        self.tagStart = 0
        self.fieldNumber = 0
        self.options = options
    }

    /// Whether the current message has no more bytes.
    @inlinable
    public var isAtEnd: Bool { position >= end }

    @inlinable
    func byte(at offset: Int) -> UInt8 {
        bytes.baseAddress.unsafelyUnwrapped.load(fromByteOffset: offset, as: UInt8.self)
    }

    /// Reads the next field tag, or returns `nil` at the end of the current message.
    ///
    /// - Throws: ``WireDecodingError/invalidFieldNumber(_:)``, ``WireDecodingError/invalidWireType(_:)``,
    ///   or an error from reading the varint.
    @inlinable
    public mutating func nextTag() throws(WireDecodingError) -> WireTag? {
        guard position < end else { return nil }
        tagStart = position
        let raw = try readVarint()
        let number = raw >> 3
        guard number != 0, number <= UInt64(WireFormat.maxFieldNumber) else {
            throw .invalidFieldNumber(number)
        }
        guard let wireType = WireType(rawValue: UInt8(truncatingIfNeeded: raw & 7)) else {
            throw .invalidWireType(UInt8(truncatingIfNeeded: raw & 7))
        }
        fieldNumber = Int(truncatingIfNeeded: number)
        return WireTag(fieldNumber: fieldNumber, wireType: wireType)
    }

    /// Reads a base-128 varint of up to ten bytes.
    ///
    /// - Throws: ``WireDecodingError/truncated`` or ``WireDecodingError/overlongVarint``.
    @inlinable
    public mutating func readVarint() throws(WireDecodingError) -> UInt64 {
        guard position < end else { throw .truncated }
        let first = byte(at: position)
        if first < 0x80 {
            position &+= 1
            return UInt64(first)
        }
        return try readVarintSlowly()
    }

    @inlinable
    mutating func readVarintSlowly() throws(WireDecodingError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var offset = position
        while true {
            guard offset < end else { throw .truncated }
            let byte = byte(at: offset)
            offset &+= 1
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 {
                position = offset
                return result
            }
            shift &+= 7
            if shift >= 70 { throw .overlongVarint }
        }
    }

    /// Reads four little-endian bytes.
    @inlinable
    public mutating func readFixed32() throws(WireDecodingError) -> UInt32 {
        guard end &- position >= 4 else { throw .truncated }
        let value = bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self)
        position &+= 4
        return UInt32(littleEndian: value)
    }

    /// Reads eight little-endian bytes.
    @inlinable
    public mutating func readFixed64() throws(WireDecodingError) -> UInt64 {
        guard end &- position >= 8 else { throw .truncated }
        let value = bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self)
        position &+= 8
        return UInt64(littleEndian: value)
    }

    /// Reads a length prefix and checks it against the bytes left in the current message.
    ///
    /// - Throws: ``WireDecodingError/lengthPastEnd(length:available:)`` when it does not fit.
    @inlinable
    public mutating func readLength() throws(WireDecodingError) -> Int {
        let length = try readVarint()
        let available = end &- position
        guard length <= UInt64(available) else { throw .lengthPastEnd(length: length, available: available) }
        return Int(truncatingIfNeeded: length)
    }

    /// Reads a length-delimited value and returns its bytes, borrowed from the input.
    @inlinable
    public mutating func readLengthDelimited() throws(WireDecodingError) -> UnsafeRawBufferPointer {
        let length = try readLength()
        let slice = UnsafeRawBufferPointer(rebasing: bytes[position..<(position &+ length)])
        position &+= length
        return slice
    }

    /// Decodes a nested message's fields into `message`, merging as protobuf does.
    ///
    /// - Throws: ``WireDecodingError/nestingTooDeep(limit:)`` beyond ``WireDecodingOptions/maxDepth``,
    ///   or any error from the nested message.
    @inlinable
    public mutating func mergeMessage<M: WireMessage>(into message: inout M) throws(WireDecodingError) {
        let length = try readLength()
        guard depth < options.maxDepth else { throw .nestingTooDeep(limit: options.maxDepth) }
        let outerEnd = end
        end = position &+ length
        depth &+= 1
        try message.merge(from: &self)
        depth &-= 1
        end = outerEnd
    }

    /// Decodes a nested message's fields into `message`, starting from an empty message when it is `nil`.
    @inlinable
    public mutating func mergeMessage<M: WireMessage>(into message: inout M?) throws(WireDecodingError) {
        var value = message ?? M()
        try mergeMessage(into: &value)
        message = value
    }

    /// Decodes the top-level message: all of the input, to the end.
    @inlinable
    public mutating func decodeMessage<M: WireMessage>(_: M.Type = M.self) throws(WireDecodingError) -> M {
        var message = M()
        try message.merge(from: &self)
        return message
    }
}
