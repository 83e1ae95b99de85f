/// The wire form of a fixed-width scalar: its bits as a little-endian `UInt32` or `UInt64`.
public protocol ProtoFixedBits: ProtoFixedWidth {
    /// `UInt32` or `UInt64`.
    associatedtype Bits: FixedWidthInteger & UnsignedInteger
    /// The value's bits.
    static func bits(of value: Value) -> Bits
    /// The value with these bits.
    static func value(of bits: Bits) -> Value
}

extension ProtoFixedBits {
    @inlinable
    public static var width: Int { MemoryLayout<Bits>.size }
    @inlinable
    public static var wireType: WireType { Bits.bitWidth == 32 ? .fixed32 : .fixed64 }
    @inlinable
    public static var defaultValue: Value { value(of: 0) }
    @inlinable
    public static func size(of value: Value) -> Int { width }
    @inlinable
    public static func write(_ value: Value, to writer: inout WireWriter) {
        let bits = bits(of: value)
        if Bits.bitWidth == 32 {
            writer.writeFixed32(UInt32(truncatingIfNeeded: bits))
        } else {
            writer.writeFixed64(UInt64(truncatingIfNeeded: bits))
        }
    }
    @inlinable
    public static func read(from reader: inout WireReader) throws(WireDecodingError) -> Value {
        if Bits.bitWidth == 32 {
            return value(of: Bits(truncatingIfNeeded: try reader.readFixed32()))
        }
        return value(of: Bits(truncatingIfNeeded: try reader.readFixed64()))
    }
}

/// `fixed32`.
public enum ProtoFixed32: ProtoFixedBits, ProtoComparableMapKey {
    public typealias Value = UInt32
    public typealias Bits = UInt32
    @inlinable
    public static func bits(of value: UInt32) -> UInt32 { value }
    @inlinable
    public static func value(of bits: UInt32) -> UInt32 { bits }
}

/// `fixed64`.
public enum ProtoFixed64: ProtoFixedBits, ProtoComparableMapKey {
    public typealias Value = UInt64
    public typealias Bits = UInt64
    @inlinable
    public static func bits(of value: UInt64) -> UInt64 { value }
    @inlinable
    public static func value(of bits: UInt64) -> UInt64 { bits }
}

/// `sfixed32`.
public enum ProtoSFixed32: ProtoFixedBits, ProtoComparableMapKey {
    public typealias Value = Int32
    public typealias Bits = UInt32
    @inlinable
    public static func bits(of value: Int32) -> UInt32 { UInt32(bitPattern: value) }
    @inlinable
    public static func value(of bits: UInt32) -> Int32 { Int32(bitPattern: bits) }
}

/// `sfixed64`.
public enum ProtoSFixed64: ProtoFixedBits, ProtoComparableMapKey {
    public typealias Value = Int64
    public typealias Bits = UInt64
    @inlinable
    public static func bits(of value: Int64) -> UInt64 { UInt64(bitPattern: value) }
    @inlinable
    public static func value(of bits: UInt64) -> Int64 { Int64(bitPattern: bits) }
}

/// `float`: IEEE 754 single precision; NaN payloads, infinities and -0.0 survive unchanged.
public enum ProtoFloat: ProtoFixedBits {
    public typealias Value = Float
    public typealias Bits = UInt32
    @inlinable
    public static func bits(of value: Float) -> UInt32 { value.bitPattern }
    @inlinable
    public static func value(of bits: UInt32) -> Float { Float(bitPattern: bits) }
}

/// `double`: IEEE 754 double precision; NaN payloads, infinities and -0.0 survive unchanged.
public enum ProtoDouble: ProtoFixedBits {
    public typealias Value = Double
    public typealias Bits = UInt64
    @inlinable
    public static func bits(of value: Double) -> UInt64 { value.bitPattern }
    @inlinable
    public static func value(of bits: UInt64) -> Double { Double(bitPattern: bits) }
}
