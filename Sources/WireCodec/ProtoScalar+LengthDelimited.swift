/// `string`: a length and UTF-8 bytes. Decoding rejects invalid UTF-8.
public enum ProtoString: ProtoComparableMapKey {
    @inlinable
    public static var wireType: WireType { .lengthDelimited }
    @inlinable
    public static var defaultValue: String { "" }
    @inlinable
    public static func size(of value: String) -> Int { WireSize.lengthDelimited(value.utf8.count) }
    @inlinable
    public static func write(_ value: String, to writer: inout WireWriter) {
        let written: Void? = value.utf8.withContiguousStorageIfAvailable { utf8 in
            writer.writeLengthDelimited(UnsafeRawBufferPointer(utf8))
        }
        if written == nil {
            var copy = value
            copy.withUTF8 { writer.writeLengthDelimited(UnsafeRawBufferPointer($0)) }
        }
    }
    @inlinable
    public static func read(from reader: inout WireReader) throws(WireDecodingError) -> String {
        let bytes = try reader.readLengthDelimited()
        if bytes.isEmpty { return "" }
        guard let string = String(validatingUTF8Bytes: bytes) else {
            throw reader.invalidUTF8(in: bytes)
        }
        return string
    }
}

/// `bytes`: a length and the bytes, as `[UInt8]`.
public enum ProtoBytes: ProtoScalar {
    @inlinable
    public static var wireType: WireType { .lengthDelimited }
    @inlinable
    public static var defaultValue: [UInt8] { [] }
    @inlinable
    public static func size(of value: [UInt8]) -> Int { WireSize.lengthDelimited(value.count) }
    @inlinable
    public static func write(_ value: [UInt8], to writer: inout WireWriter) {
        value.withUnsafeBytes { writer.writeLengthDelimited($0) }
    }
    @inlinable
    public static func read(from reader: inout WireReader) throws(WireDecodingError) -> [UInt8] {
        let bytes = try reader.readLengthDelimited()
        return [UInt8](copyingBytes: bytes)
    }
}

/// A nested message: its size and then its fields.
public enum ProtoMessage<M: WireMessage>: ProtoScalar {
    @inlinable
    public static var wireType: WireType { .lengthDelimited }
    @inlinable
    public static var defaultValue: M { M() }
    @inlinable
    public static func size(of value: M) -> Int { WireSize.lengthDelimited(value.serializedSize()) }
    @inlinable
    public static func write(_ value: M, to writer: inout WireWriter) {
        writer.writeVarint(UInt64(value.serializedSize()))
        value.encode(to: &writer)
    }
    @inlinable
    public static func read(from reader: inout WireReader) throws(WireDecodingError) -> M {
        var message = M()
        try reader.mergeMessage(into: &message)
        return message
    }
    @inlinable
    public static func merge(into value: inout M, from reader: inout WireReader) throws(WireDecodingError) {
        try reader.mergeMessage(into: &value)
    }
}
