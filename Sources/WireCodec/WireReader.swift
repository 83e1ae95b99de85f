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
    /// Where the last tag read by ``nextTag()`` started, so an unknown field can be kept byte for byte.
    @usableFromInline
    var tagStart: Int
    /// The last tag read by ``nextTag()``, `fieldNumber << 3 | wireType`, or 0 before the first:
    /// the field that errors name. Tags inside groups and map entries do not replace it, so an error
    /// there names the field of the message that holds them.
    @usableFromInline
    var currentTag: UInt32
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
        self.currentTag = 0
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
    /// A tag is a varint of at most ``WireFormat/maxTagLength`` bytes whose value fits in 32 bits, as
    /// Google's protobuf reads it.
    ///
    /// - Throws: ``WireDecodingError`` with reason ``WireDecodingError/Reason/invalidFieldNumber(_:)``,
    ///   ``WireDecodingError/Reason/invalidWireType(_:)``, ``WireDecodingError/Reason/overlongTag`` or
    ///   ``WireDecodingError/Reason/truncatedVarint(remaining:)``; the error names no field.
    @inlinable
    public mutating func nextTag() throws(WireDecodingError) -> WireTag? {
        guard position < end else { return nil }
        tagStart = position
        let tag = try readTag(errorField: 0)
        currentTag = tag.rawValue
        return tag
    }

    /// Reads a tag at `position`, which must be before `end`, without making it the current field:
    /// groups and map entries read their inner tags with this.
    ///
    /// - Parameter errorField: The raw tag that errors name; 0 for none.
    @inlinable
    mutating func readTag(errorField: UInt32) throws(WireDecodingError) -> WireTag {
        let start = position
        let first = byte(at: start)
        let raw: UInt32
        if first < 0x80 {
            raw = UInt32(first)
            position = start &+ 1
        } else {
            raw = try readLongTag(errorField: errorField)
        }
        guard raw >= 8 else { throw Self.failure(.invalidFieldNumber(0), at: start, field: errorField) }
        let wireTypeBits = UInt8(truncatingIfNeeded: raw & 7)
        guard let wireType = WireType(rawValue: wireTypeBits) else {
            throw Self.failure(.invalidWireType(wireTypeBits), at: start, field: errorField)
        }
        return WireTag(rawValue: raw, fieldNumber: Int(truncatingIfNeeded: raw >> 3), wireType: wireType)
    }

    /// Reads a tag of two to five bytes.
    @inlinable
    mutating func readLongTag(errorField: UInt32) throws(WireDecodingError) -> UInt32 {
        let start = position
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var offset = start
        while true {
            guard offset < end else {
                throw Self.failure(.truncatedVarint(remaining: end &- start), at: start, field: errorField)
            }
            let byte = byte(at: offset)
            offset &+= 1
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { break }
            shift &+= 7
            if shift >= 7 &* UInt64(WireFormat.maxTagLength) {
                throw Self.failure(.overlongTag, at: start, field: errorField)
            }
        }
        // Google's C++ runtime drops the bits of a fifth byte beyond 32, which would read a different
        // field than upb and swift-protobuf, which refuse the tag; refusing is the reading no peer
        // can turn into a field another reader does not see.
        guard result <= UInt64(UInt32.max) else {
            throw Self.failure(.invalidFieldNumber(result >> 3), at: start, field: errorField)
        }
        position = offset
        return UInt32(truncatingIfNeeded: result)
    }

    /// Reads a base-128 varint of up to ten bytes.
    ///
    /// - Throws: ``WireDecodingError`` with reason ``WireDecodingError/Reason/truncatedVarint(remaining:)``
    ///   or ``WireDecodingError/Reason/overlongVarint``.
    @inlinable
    public mutating func readVarint() throws(WireDecodingError) -> UInt64 {
        guard position < end else { throw failure(.truncatedVarint(remaining: 0), at: position) }
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
            guard offset < end else { throw failure(.truncatedVarint(remaining: end &- position), at: position) }
            let byte = byte(at: offset)
            offset &+= 1
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 {
                position = offset
                return result
            }
            shift &+= 7
            if shift >= 70 { throw failure(.overlongVarint, at: position) }
        }
    }

    /// Reads four little-endian bytes.
    @inlinable
    public mutating func readFixed32() throws(WireDecodingError) -> UInt32 {
        guard end &- position >= 4 else { throw failure(.truncated(needed: 4, remaining: end &- position), at: position) }
        let value = bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self)
        position &+= 4
        return UInt32(littleEndian: value)
    }

    /// Reads eight little-endian bytes.
    @inlinable
    public mutating func readFixed64() throws(WireDecodingError) -> UInt64 {
        guard end &- position >= 8 else { throw failure(.truncated(needed: 8, remaining: end &- position), at: position) }
        let value = bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self)
        position &+= 8
        return UInt64(littleEndian: value)
    }

    /// Reads a length prefix and checks it against the bytes left in the current message.
    ///
    /// - Throws: ``WireDecodingError`` with reason ``WireDecodingError/Reason/lengthPastEnd(length:remaining:)``
    ///   when it does not fit, or an error from reading the varint.
    @inlinable
    public mutating func readLength() throws(WireDecodingError) -> Int {
        let start = position
        let length = try readVarint()
        let available = end &- position
        guard length <= UInt64(available) else {
            throw failure(.lengthPastEnd(length: length, remaining: available), at: start)
        }
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
    /// - Throws: ``WireDecodingError`` with reason ``WireDecodingError/Reason/nestingTooDeep(limit:)``
    ///   beyond ``WireDecodingOptions/maxDepth``, or any error from the nested message.
    @inlinable
    public mutating func mergeMessage<M: WireMessage>(into message: inout M) throws(WireDecodingError) {
        let start = position
        let length = try readLength()
        guard depth < options.maxDepth else { throw failure(.nestingTooDeep(limit: options.maxDepth), at: start) }
        let outerEnd = end
        let outerTag = currentTag
        end = position &+ length
        depth &+= 1
        try message.merge(from: &self)
        depth &-= 1
        end = outerEnd
        // A map entry goes on reading after a message value, and its errors name the map field.
        currentTag = outerTag
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

    /// An error at `offset` naming the current field. Out of line, so the inlined fast paths stay small.
    @usableFromInline
    @inline(never)
    func failure(_ reason: WireDecodingError.Reason, at offset: Int) -> WireDecodingError {
        Self.failure(reason, at: offset, field: currentTag)
    }

    /// An error at `offset` naming the field whose raw tag is `field`, or none when it is 0.
    @usableFromInline
    @inline(never)
    static func failure(_ reason: WireDecodingError.Reason, at offset: Int, field: UInt32) -> WireDecodingError {
        var tag: WireTag?
        if field >= 8, let wireType = WireType(rawValue: UInt8(truncatingIfNeeded: field & 7)) {
            tag = WireTag(rawValue: field, fieldNumber: Int(truncatingIfNeeded: field >> 3), wireType: wireType)
        }
        return WireDecodingError(reason, offset: offset, field: tag)
    }

    /// The error for a string whose bytes, borrowed from the input, are not valid UTF-8: it points
    /// at the first byte that is not part of a valid sequence.
    @usableFromInline
    @inline(never)
    func invalidUTF8(in string: UnsafeRawBufferPointer) -> WireDecodingError {
        var start = 0
        if let base = bytes.baseAddress, let stringBase = string.baseAddress { start = stringBase - base }
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = string.makeIterator()
        var valid = 0
        parsing: while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): valid &+= scalar.count
            case .error, .emptyInput: break parsing
            }
        }
        return failure(.invalidUTF8, at: start &+ valid)
    }
}
