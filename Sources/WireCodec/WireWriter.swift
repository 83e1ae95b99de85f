/// Writes the protobuf wire format into a buffer whose size was computed beforehand.
///
/// A writer never grows its buffer: callers ask a message for its ``WireMessage/serializedSize()``,
/// provide exactly that many bytes, and the message writes once. Writing past the end is a bug in the
/// size computation, so it stops the program rather than corrupting memory.
///
/// ```swift
/// let size = message.serializedSize()
/// reactor.sendFrame(payloadSize: size) { buffer in message.serialize(into: buffer) }
/// ```
public struct WireWriter {
    @usableFromInline
    let base: UnsafeMutableRawPointer?
    @usableFromInline
    let capacity: Int
    @usableFromInline
    var position: Int

    /// Creates a writer that fills `buffer` from its start.
    ///
    /// - Parameter buffer: Memory for the encoded bytes; it must outlive the writer.
    @inlinable
    public init(buffer: UnsafeMutableRawBufferPointer) {
        self.base = buffer.baseAddress
        self.capacity = buffer.count
        self.position = 0
    }

    /// How many bytes have been written so far.
    @inlinable
    public var bytesWritten: Int { position }

    /// Reserves `count` bytes and returns where they start.
    @inlinable
    mutating func claim(_ count: Int) -> UnsafeMutableRawPointer {
        precondition(count <= capacity &- position, "WireWriter: message wrote more than its serializedSize()")
        // `base` is nil only for an empty buffer, and then only a claim of 0 bytes gets here.
        let start = (base ?? UnsafeMutableRawPointer(bitPattern: 1)!) + position
        position &+= count
        return start
    }

    /// Writes a base-128 varint.
    @inlinable
    public mutating func writeVarint(_ value: UInt64) {
        if value < 0x80 {
            claim(1).storeBytes(of: UInt8(truncatingIfNeeded: value), as: UInt8.self)
            return
        }
        let pointer = claim(WireSize.varint(value))
        var value = value
        var offset = 0
        while value >= 0x80 {
            pointer.storeBytes(of: UInt8(truncatingIfNeeded: value) | 0x80, toByteOffset: offset, as: UInt8.self)
            value >>= 7
            offset &+= 1
        }
        pointer.storeBytes(of: UInt8(truncatingIfNeeded: value), toByteOffset: offset, as: UInt8.self)
    }

    /// Writes a field tag, given as the precomputed `fieldNumber << 3 | wireType`.
    @inlinable
    public mutating func writeTag(_ tag: UInt32) {
        writeVarint(UInt64(tag))
    }

    /// Writes four bytes, little-endian.
    @inlinable
    public mutating func writeFixed32(_ value: UInt32) {
        claim(4).storeBytes(of: value.littleEndian, as: UInt32.self)
    }

    /// Writes eight bytes, little-endian.
    @inlinable
    public mutating func writeFixed64(_ value: UInt64) {
        claim(8).storeBytes(of: value.littleEndian, as: UInt64.self)
    }

    /// Copies raw bytes.
    @inlinable
    public mutating func writeRawBytes(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        claim(bytes.count).copyMemory(from: source, byteCount: bytes.count)
    }

    /// Writes a length prefix and then the bytes.
    @inlinable
    public mutating func writeLengthDelimited(_ bytes: UnsafeRawBufferPointer) {
        writeVarint(UInt64(bytes.count))
        writeRawBytes(bytes)
    }
}
