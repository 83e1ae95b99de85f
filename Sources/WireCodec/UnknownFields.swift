/// Fields a message's schema does not know, kept as their encoded bytes.
///
/// Decoding keeps every field it does not recognise here, and encoding writes them back after the
/// known fields, so a peer on an older schema relays a newer message without losing anything.
public struct UnknownFields: Hashable, Sendable {
    /// The unknown fields, tags included, in the order they arrived.
    @inlinable
    public var bytes: [UInt8] { storage }

    @usableFromInline
    var storage: [UInt8]

    /// Creates an empty set of unknown fields.
    @inlinable
    public init() {
        self.storage = []
    }

    /// Whether there are none.
    @inlinable
    public var isEmpty: Bool { storage.isEmpty }

    /// The number of encoded bytes they take.
    @inlinable
    public var count: Int { storage.count }

    @inlinable
    mutating func append(_ field: UnsafeRawBufferPointer) {
        storage.append(contentsOf: field)
    }
}

extension WireWriter {
    /// Writes unknown fields back exactly as they were read.
    @inlinable
    public mutating func writeUnknownFields(_ fields: UnknownFields) {
        if fields.isEmpty { return }
        fields.bytes.withUnsafeBytes { writeRawBytes($0) }
    }
}

extension WireReader {
    /// Skips the value of a field the schema does not know and keeps its bytes in `unknownFields`,
    /// unless ``WireDecodingOptions/discardUnknownFields`` is set.
    ///
    /// - Parameters:
    ///   - tag: The tag just read by ``nextTag()``.
    ///   - unknownFields: Where the field's bytes, tag included, are appended.
    /// - Throws: Any error from reading the skipped value.
    @inlinable
    public mutating func skipField(_ tag: WireTag, into unknownFields: inout UnknownFields) throws(WireDecodingError) {
        let start = tagStart
        try skipValue(tag)
        if !options.discardUnknownFields {
            unknownFields.append(UnsafeRawBufferPointer(rebasing: bytes[start..<position]))
        }
    }

    /// Skips the value that follows `tag`, including a whole group.
    @usableFromInline
    mutating func skipValue(_ tag: WireTag) throws(WireDecodingError) {
        switch tag.wireType {
        case .varint:
            _ = try readVarint()
        case .fixed64:
            _ = try readFixed64()
        case .fixed32:
            _ = try readFixed32()
        case .lengthDelimited:
            position &+= try readLength()
        case .startGroup:
            guard depth < options.maxDepth else { throw .nestingTooDeep(limit: options.maxDepth) }
            depth &+= 1
            while true {
                guard let inner = try nextTag() else { throw .truncated }
                if inner.wireType == .endGroup {
                    guard inner.fieldNumber == tag.fieldNumber else { throw .unmatchedEndGroup(fieldNumber: inner.fieldNumber) }
                    break
                }
                try skipValue(inner)
            }
            depth &-= 1
        case .endGroup:
            throw .unmatchedEndGroup(fieldNumber: tag.fieldNumber)
        }
    }

    /// Reports a known field that arrived with a wire type its type cannot have.
    @inlinable
    public func wrongWireType(_ tag: WireTag) -> WireDecodingError {
        .wrongWireType(fieldNumber: tag.fieldNumber, wireType: tag.wireType)
    }
}
