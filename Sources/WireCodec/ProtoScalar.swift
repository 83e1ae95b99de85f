/// How one protobuf field type maps to a Swift type and to the wire.
///
/// The conforming types are caseless enums named after the proto types (``ProtoUInt64``,
/// ``ProtoSInt32``, ``ProtoFloat``...). Generated code passes them to the generic helpers of
/// ``WireWriter``, ``WireReader`` and ``WireSize``; every call names a concrete type and the helpers
/// are `@inlinable`, so they specialise to straight-line code with no existentials.
public protocol ProtoScalar {
    /// The Swift type of a field of this proto type.
    associatedtype Value: Sendable
    /// How a single value is laid out.
    static var wireType: WireType { get }
    /// The proto3 default: zero, `false`, empty, the enum's zero case, or an empty message.
    static var defaultValue: Value { get }
    /// The encoded size of `value`, without a tag.
    static func size(of value: Value) -> Int
    /// Writes `value`, without a tag.
    static func write(_ value: Value, to writer: inout WireWriter)
    /// Reads one value, without a tag.
    static func read(from reader: inout WireReader) throws(WireDecodingError) -> Value
    /// Reads one value, without a tag, into `value`: a scalar replaces it, a message merges into it.
    static func merge(into value: inout Value, from reader: inout WireReader) throws(WireDecodingError)
}

extension ProtoScalar {
    @inlinable
    public static func merge(into value: inout Value, from reader: inout WireReader) throws(WireDecodingError) {
        value = try read(from: &reader)
    }
}

/// A scalar that repeated fields pack: every varint and fixed-width type.
public protocol ProtoPackable: ProtoScalar {}

/// A fixed-width scalar whose little-endian encoding is its memory layout on little-endian machines,
/// so that packed arrays of it move as one block.
public protocol ProtoFixedWidth: ProtoPackable where Value: BitwiseCopyable {
    /// The encoded size of one value: 4 or 8.
    static var width: Int { get }
}

/// A scalar that can key a map. Map entries are written in key order so that encoding is stable.
public protocol ProtoMapKey: ProtoScalar {
    /// Whether `lhs` sorts before `rhs`.
    static func precedes(_ lhs: Value, _ rhs: Value) -> Bool
}

/// A map key type whose Swift values are `Comparable`.
public protocol ProtoComparableMapKey: ProtoMapKey where Value: Comparable {}

extension ProtoComparableMapKey {
    @inlinable
    public static func precedes(_ lhs: Value, _ rhs: Value) -> Bool { lhs < rhs }
}

/// A varint scalar: defaults and wire type shared by the integer types.
public protocol ProtoVarint: ProtoPackable where Value: BinaryInteger {}

extension ProtoVarint {
    @inlinable
    public static var wireType: WireType { .varint }
    @inlinable
    public static var defaultValue: Value { 0 }
}
