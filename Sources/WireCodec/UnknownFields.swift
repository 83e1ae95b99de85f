/// Fields a message's schema does not know, kept as their encoded bytes.
///
/// Decoding keeps every field it does not recognise here, and encoding writes them back after the
/// known fields, so a peer on an older schema relays a newer message without losing anything. A
/// known field that arrives with a wire type its type cannot have (a string sent as a varint) is
/// kept here too, as Google's protobuf keeps it. The bytes are kept as they arrived: Google's C++
/// runtime re-encodes an unknown field's varints at their shortest, upb and swift-protobuf do not.
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
    /// Skips the value of a field the schema does not know, or a known field that arrived with a wire
    /// type its type cannot have, and keeps its bytes in `unknownFields` unless
    /// ``WireDecodingOptions/discardUnknownFields`` is set.
    ///
    /// Google's protobuf treats a field with the wrong wire type as unknown too: it keeps it and
    /// writes it back, so a message relayed through Downpour loses nothing that protobuf would keep.
    ///
    /// - Parameters:
    ///   - tag: The tag just read by ``nextTag()``.
    ///   - unknownFields: Where the field's bytes, tag included, are appended.
    /// - Throws: Any error from reading the skipped value; an end-group tag, which only a group may
    ///   hold, is ``WireDecodingError/Reason/unmatchedEndGroup(fieldNumber:)``.
    @inlinable
    public mutating func skipField(_ tag: WireTag, into unknownFields: inout UnknownFields) throws(WireDecodingError) {
        let start = tagStart
        if tag.wireType == .endGroup {
            // The tag itself is what is wrong, so the error names no field.
            throw Self.failure(.unmatchedEndGroup(fieldNumber: tag.fieldNumber), at: start, field: 0)
        }
        try skipValue(tag, tagOffset: start)
        if !options.discardUnknownFields {
            unknownFields.append(UnsafeRawBufferPointer(rebasing: bytes[start..<position]))
        }
    }

    /// Skips the value that follows `tag`, including a whole group.
    ///
    /// - Parameters:
    ///   - tag: The tag just read.
    ///   - tagOffset: Where that tag starts, for errors.
    @usableFromInline
    mutating func skipValue(_ tag: WireTag, tagOffset: Int) throws(WireDecodingError) {
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
            guard depth < options.maxDepth else { throw failure(.nestingTooDeep(limit: options.maxDepth), at: tagOffset) }
            depth &+= 1
            while true {
                guard position < end else { throw failure(.unterminatedGroup, at: tagOffset) }
                let innerOffset = position
                let inner = try readTag(errorField: currentTag)
                if inner.wireType == .endGroup {
                    guard inner.fieldNumber == tag.fieldNumber else {
                        throw failure(.unmatchedEndGroup(fieldNumber: inner.fieldNumber), at: innerOffset)
                    }
                    break
                }
                try skipValue(inner, tagOffset: innerOffset)
            }
            depth &-= 1
        case .endGroup:
            throw failure(.unmatchedEndGroup(fieldNumber: tag.fieldNumber), at: tagOffset)
        }
    }
}
