/// `int32`: negative values take ten bytes, sign-extended to 64 bits.
public enum ProtoInt32: ProtoVarint, ProtoComparableMapKey {
    @inlinable
    public static func size(of value: Int32) -> Int { WireSize.varint(UInt64(bitPattern: Int64(value))) }
    @inlinable
    public static func write(_ value: Int32, to writer: inout WireWriter) {
        writer.writeVarint(UInt64(bitPattern: Int64(value)))
    }
    @inlinable
    public static func read(from reader: inout WireReader) throws(WireDecodingError) -> Int32 {
        Int32(truncatingIfNeeded: try reader.readVarint())
    }
}

/// `int64`.
public enum ProtoInt64: ProtoVarint, ProtoComparableMapKey {
    @inlinable
    public static func size(of value: Int64) -> Int { WireSize.varint(UInt64(bitPattern: value)) }
    @inlinable
    public static func write(_ value: Int64, to writer: inout WireWriter) { writer.writeVarint(UInt64(bitPattern: value)) }
    @inlinable
    public static func read(from reader: inout WireReader) throws(WireDecodingError) -> Int64 {
        Int64(bitPattern: try reader.readVarint())
    }
}

/// `uint32`.
public enum ProtoUInt32: ProtoVarint, ProtoComparableMapKey {
    @inlinable
    public static func size(of value: UInt32) -> Int { WireSize.varint(UInt64(value)) }
    @inlinable
    public static func write(_ value: UInt32, to writer: inout WireWriter) { writer.writeVarint(UInt64(value)) }
    @inlinable
    public static func read(from reader: inout WireReader) throws(WireDecodingError) -> UInt32 {
        UInt32(truncatingIfNeeded: try reader.readVarint())
    }
}

/// `uint64`.
public enum ProtoUInt64: ProtoVarint, ProtoComparableMapKey {
    @inlinable
    public static func size(of value: UInt64) -> Int { WireSize.varint(value) }
    @inlinable
    public static func write(_ value: UInt64, to writer: inout WireWriter) { writer.writeVarint(value) }
    @inlinable
    public static func read(from reader: inout WireReader) throws(WireDecodingError) -> UInt64 {
        try reader.readVarint()
    }
}

/// `sint32`: zigzag, so small negative numbers stay short.
public enum ProtoSInt32: ProtoVarint, ProtoComparableMapKey {
    @inlinable
    public static func size(of value: Int32) -> Int { WireSize.varint(UInt64(ZigZag.encode(value))) }
    @inlinable
    public static func write(_ value: Int32, to writer: inout WireWriter) { writer.writeVarint(UInt64(ZigZag.encode(value))) }
    @inlinable
    public static func read(from reader: inout WireReader) throws(WireDecodingError) -> Int32 {
        ZigZag.decode(UInt32(truncatingIfNeeded: try reader.readVarint()))
    }
}

/// `sint64`: zigzag, so small negative numbers stay short.
public enum ProtoSInt64: ProtoVarint, ProtoComparableMapKey {
    @inlinable
    public static func size(of value: Int64) -> Int { WireSize.varint(ZigZag.encode(value)) }
    @inlinable
    public static func write(_ value: Int64, to writer: inout WireWriter) { writer.writeVarint(ZigZag.encode(value)) }
    @inlinable
    public static func read(from reader: inout WireReader) throws(WireDecodingError) -> Int64 {
        ZigZag.decode(try reader.readVarint())
    }
}

/// `bool`: one byte on the wire; any non-zero varint decodes as `true`.
public enum ProtoBool: ProtoPackable, ProtoMapKey {
    @inlinable
    public static var wireType: WireType { .varint }
    @inlinable
    public static var defaultValue: Bool { false }
    @inlinable
    public static func size(of value: Bool) -> Int { 1 }
    @inlinable
    public static func write(_ value: Bool, to writer: inout WireWriter) { writer.writeVarint(value ? 1 : 0) }
    @inlinable
    public static func read(from reader: inout WireReader) throws(WireDecodingError) -> Bool {
        try reader.readVarint() != 0
    }
    @inlinable
    public static func precedes(_ lhs: Bool, _ rhs: Bool) -> Bool { !lhs && rhs }
}

/// An enum: its `Int32` raw value, as `int32`. Values the schema does not know decode as `unrecognized`.
public enum ProtoEnum<E: WireEnum>: ProtoPackable {
    @inlinable
    public static var wireType: WireType { .varint }
    @inlinable
    public static var defaultValue: E { E(rawValue: 0) }
    @inlinable
    public static func size(of value: E) -> Int { ProtoInt32.size(of: value.rawValue) }
    @inlinable
    public static func write(_ value: E, to writer: inout WireWriter) { ProtoInt32.write(value.rawValue, to: &writer) }
    @inlinable
    public static func read(from reader: inout WireReader) throws(WireDecodingError) -> E {
        E(rawValue: try ProtoInt32.read(from: &reader))
    }
}

/// ZigZag encoding: maps signed integers to unsigned ones so that small magnitudes stay small
/// (0 → 0, -1 → 1, 1 → 2, -2 → 3...).
public enum ZigZag {
    /// Encodes a 32-bit signed integer.
    @inlinable
    public static func encode(_ value: Int32) -> UInt32 {
        UInt32(bitPattern: (value << 1) ^ (value >> 31))
    }

    /// Encodes a 64-bit signed integer.
    @inlinable
    public static func encode(_ value: Int64) -> UInt64 {
        UInt64(bitPattern: (value << 1) ^ (value >> 63))
    }

    /// Decodes a 32-bit value.
    @inlinable
    public static func decode(_ value: UInt32) -> Int32 {
        Int32(bitPattern: value >> 1) ^ -Int32(bitPattern: value & 1)
    }

    /// Decodes a 64-bit value.
    @inlinable
    public static func decode(_ value: UInt64) -> Int64 {
        Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1)
    }
}
