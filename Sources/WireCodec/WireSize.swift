/// Encoded sizes, computed before anything is written so that a message is written once into a buffer
/// of exactly the right size.
public enum WireSize {
    /// The number of bytes the varint encoding of `value` takes, from 1 to 10.
    @inlinable
    public static func varint(_ value: UInt64) -> Int {
        let bits = 64 &- (value | 1).leadingZeroBitCount
        return (bits &+ 6) / 7
    }

    /// The size of a length prefix followed by `length` bytes.
    @inlinable
    public static func lengthDelimited(_ length: Int) -> Int {
        varint(UInt64(truncatingIfNeeded: length)) &+ length
    }

    /// The size of one field: its tag and its value.
    @inlinable
    public static func field<S: ProtoScalar>(_: S.Type, _ value: S.Value, tagSize: Int) -> Int {
        tagSize &+ S.size(of: value)
    }

    /// The size of an unpacked repeated field: a tag before every element.
    @inlinable
    public static func repeated<S: ProtoScalar>(_: S.Type, _ values: [S.Value], tagSize: Int) -> Int {
        var size = tagSize &* values.count
        for value in values { size &+= S.size(of: value) }
        return size
    }

    /// The size of a packed repeated field: one tag, one length, the elements back to back; 0 when empty.
    @inlinable
    public static func packed<S: ProtoPackable>(_: S.Type, _ values: [S.Value], tagSize: Int) -> Int {
        if values.isEmpty { return 0 }
        return tagSize &+ lengthDelimited(packedPayload(S.self, values))
    }

    /// The size of a packed repeated field of fixed-width elements, without looking at the elements.
    @inlinable
    public static func packed<S: ProtoFixedWidth>(_: S.Type, _ values: [S.Value], tagSize: Int) -> Int {
        if values.isEmpty { return 0 }
        return tagSize &+ lengthDelimited(values.count &* S.width)
    }

    /// The bytes the elements of a packed field take, without tag and length.
    @inlinable
    static func packedPayload<S: ProtoPackable>(_: S.Type, _ values: [S.Value]) -> Int {
        var size = 0
        for value in values { size &+= S.size(of: value) }
        return size
    }

    /// The size of a map field: one length-delimited entry per key, each holding key (1) and value (2).
    @inlinable
    public static func map<K: ProtoMapKey, V: ProtoScalar>(
        _: K.Type, _: V.Type, _ map: [K.Value: V.Value], tagSize: Int
    ) -> Int {
        var size = tagSize &* map.count
        for (key, value) in map { size &+= lengthDelimited(mapEntry(K.self, V.self, key, value)) }
        return size
    }

    /// The size of one map entry's body.
    @inlinable
    static func mapEntry<K: ProtoMapKey, V: ProtoScalar>(_: K.Type, _: V.Type, _ key: K.Value, _ value: V.Value) -> Int {
        2 &+ K.size(of: key) &+ V.size(of: value)
    }
}
