extension WireReader {
    /// Reads one value of a field's type; the tag has been read and its wire type matched.
    @inlinable
    public mutating func read<S: ProtoScalar>(_ type: S.Type) throws(WireDecodingError) -> S.Value {
        try S.read(from: &self)
    }

    /// Reads a packed repeated field's payload and appends its elements.
    @inlinable
    public mutating func readPacked<S: ProtoPackable>(
        _ type: S.Type, appendingTo values: inout [S.Value]
    ) throws(WireDecodingError) {
        let length = try readLength()
        let outerEnd = end
        end = position &+ length
        while position < end {
            values.append(try S.read(from: &self))
        }
        end = outerEnd
    }

    /// Reads a packed repeated field of fixed-width elements and appends them; on little-endian
    /// machines the elements are copied as one block.
    ///
    /// - Throws: ``WireDecodingError/malformedPackedField(fieldNumber:length:)`` when the length is not
    ///   a multiple of the element width.
    @inlinable
    public mutating func readPacked<S: ProtoFixedWidth>(
        _ type: S.Type, appendingTo values: inout [S.Value]
    ) throws(WireDecodingError) {
        let length = try readLength()
        guard length % S.width == 0 else { throw .malformedPackedField(fieldNumber: fieldNumber, length: length) }
        let count = length / S.width
        #if _endian(little)
        let source = UnsafeRawBufferPointer(rebasing: bytes[position..<(position &+ length)])
        position &+= length
        if values.isEmpty && values.capacity < count {
            values = [S.Value](copyingBytes: source)
        } else {
            // A second occurrence of the field, or storage kept from an earlier message: extend in place.
            let start = values.count
            values.append(contentsOf: repeatElement(S.defaultValue, count: count))
            values.withUnsafeMutableBytes { destination in
                UnsafeMutableRawBufferPointer(rebasing: destination[(start &* S.width)...]).copyMemory(from: source)
            }
        }
        #else
        values.reserveCapacity(values.count &+ count)
        let outerEnd = end
        end = position &+ length
        while position < end {
            values.append(try S.read(from: &self))
        }
        end = outerEnd
        #endif
    }

    /// Reads one map entry and stores it; a missing key or value takes its type's default, and a later
    /// entry for the same key replaces an earlier one.
    @inlinable
    public mutating func readMapEntry<K: ProtoMapKey, V: ProtoScalar>(
        _ keyType: K.Type, _ valueType: V.Type, into map: inout [K.Value: V.Value]
    ) throws(WireDecodingError) where K.Value: Hashable {
        let length = try readLength()
        guard depth < options.maxDepth else { throw .nestingTooDeep(limit: options.maxDepth) }
        let outerEnd = end
        end = position &+ length
        depth &+= 1
        var key = K.defaultValue
        var value = V.defaultValue
        var ignored = UnknownFields()
        while let tag = try nextTag() {
            switch (tag.fieldNumber, tag.wireType) {
            case (1, K.wireType): key = try K.read(from: &self)
            case (2, V.wireType): value = try V.read(from: &self)
            case (1, _), (2, _): throw wrongWireType(tag)
            default: try skipField(tag, into: &ignored)
            }
        }
        depth &-= 1
        end = outerEnd
        map[key] = value
    }
}
