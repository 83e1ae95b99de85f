extension WireWriter {
    /// Writes one field: its tag, then its value.
    ///
    /// - Parameters:
    ///   - type: The field's proto type, such as `ProtoUInt64.self`.
    ///   - value: The value.
    ///   - tag: The precomputed tag, `fieldNumber << 3 | wireType`.
    @inlinable
    public mutating func writeField<S: ProtoScalar>(_ type: S.Type, _ value: S.Value, tag: UInt32) {
        writeTag(tag)
        S.write(value, to: &self)
    }

    /// Writes a repeated field unpacked: a tag before every element (strings, bytes and messages).
    @inlinable
    public mutating func writeRepeated<S: ProtoScalar>(_ type: S.Type, _ values: [S.Value], tag: UInt32) {
        for value in values {
            writeField(S.self, value, tag: tag)
        }
    }

    /// Writes a packed repeated field: one tag, the payload's length, the elements back to back.
    /// Writes nothing for an empty array.
    @inlinable
    public mutating func writePacked<S: ProtoPackable>(_ type: S.Type, _ values: [S.Value], tag: UInt32) {
        if values.isEmpty { return }
        writeTag(tag)
        writeVarint(UInt64(WireSize.packedPayload(S.self, values)))
        for value in values {
            S.write(value, to: &self)
        }
    }

    /// Writes a packed repeated field of fixed-width elements; on little-endian machines the elements
    /// are copied as one block.
    @inlinable
    public mutating func writePacked<S: ProtoFixedWidth>(_ type: S.Type, _ values: [S.Value], tag: UInt32) {
        if values.isEmpty { return }
        writeTag(tag)
        writeVarint(UInt64(values.count &* S.width))
        #if _endian(little)
        values.withUnsafeBytes { writeRawBytes($0) }
        #else
        for value in values {
            S.write(value, to: &self)
        }
        #endif
    }

    /// Writes a map field: one entry per key, in key order, each holding key (field 1) and value (field 2).
    @inlinable
    public mutating func writeMap<K: ProtoMapKey, V: ProtoScalar>(
        _ keyType: K.Type, _ valueType: V.Type, _ map: [K.Value: V.Value], tag: UInt32
    ) {
        if map.isEmpty { return }
        let keyTag = UInt32(1 << 3) | UInt32(K.wireType.rawValue)
        let valueTag = UInt32(2 << 3) | UInt32(V.wireType.rawValue)
        for (key, value) in map.sorted(by: { K.precedes($0.key, $1.key) }) {
            writeTag(tag)
            writeVarint(UInt64(WireSize.mapEntry(K.self, V.self, key, value)))
            writeField(K.self, key, tag: keyTag)
            writeField(V.self, value, tag: valueTag)
        }
    }
}
