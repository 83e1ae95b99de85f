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
    /// - Throws: ``WireDecodingError`` with reason
    ///   ``WireDecodingError/Reason/malformedPackedField(length:elementSize:)`` when the length is not a
    ///   multiple of the element width.
    @inlinable
    public mutating func readPacked<S: ProtoFixedWidth>(
        _ type: S.Type, appendingTo values: inout [S.Value]
    ) throws(WireDecodingError) {
        let start = position
        let length = try readLength()
        guard length % S.width == 0 else {
            throw failure(.malformedPackedField(length: length, elementSize: S.width), at: start)
        }
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
    ///
    /// An entry's other fields, and a key or value sent with the wrong wire type, are skipped and
    /// dropped, as protobuf's generated C++, Java and Go code drop them: a map keeps keys and values
    /// only. (upb keeps such an entry whole as an unknown field instead.) A message value that appears
    /// twice in one entry is merged, as any message field is. Errors inside the entry name the map field.
    @inlinable
    public mutating func readMapEntry<K: ProtoMapKey, V: ProtoScalar>(
        _ keyType: K.Type, _ valueType: V.Type, into map: inout [K.Value: V.Value]
    ) throws(WireDecodingError) where K.Value: Hashable {
        let start = position
        let length = try readLength()
        guard depth < options.maxDepth else { throw failure(.nestingTooDeep(limit: options.maxDepth), at: start) }
        let outerEnd = end
        end = position &+ length
        depth &+= 1
        let keyTag = UInt32(1 << 3) | UInt32(K.wireType.rawValue)
        let valueTag = UInt32(2 << 3) | UInt32(V.wireType.rawValue)
        var key = K.defaultValue
        var value = V.defaultValue
        while position < end {
            let tagOffset = position
            let tag = try readTag(errorField: currentTag)
            switch tag.rawValue {
            case keyTag: key = try K.read(from: &self)
            case valueTag: try V.merge(into: &value, from: &self)
            default: try skipValue(tag, tagOffset: tagOffset)
            }
        }
        depth &-= 1
        end = outerEnd
        map[key] = value
    }
}
