/// A message that encodes to and decodes from the protobuf wire format.
///
/// `ps-codegen` generates conforming structs from `Schemas/**/*.proto`. Encoding is "size first,
/// then write once": ``serializedSize()`` computes the exact size and ``encode(to:)`` fills a buffer
/// of that size, so nothing grows on the hot path.
///
/// ```swift
/// let envelope = Envelope(body: .push(Push(unitID: 7, values: gradient)))
/// let bytes = envelope.serializedBytes()
/// let decoded = try Envelope(serializedBytes: bytes)
/// ```
public protocol WireMessage: Sendable {
    /// Creates a message with every field at its proto3 default.
    init()

    /// Fields the schema does not know, and known fields that came with a wire type their type cannot
    /// have, kept from decoding so that re-encoding loses nothing.
    var unknownFields: UnknownFields { get set }

    /// The exact number of bytes ``encode(to:)`` writes.
    func serializedSize() -> Int

    /// Writes the message's fields in field-number order, then its unknown fields.
    ///
    /// - Parameter writer: A writer with at least ``serializedSize()`` bytes left.
    func encode(to writer: inout WireWriter)

    /// Reads fields until the end of the reader's current message, merging them into `self`:
    /// scalars are replaced, repeated fields appended, nested messages merged.
    ///
    /// - Throws: ``WireDecodingError`` for malformed input.
    mutating func merge(from reader: inout WireReader) throws(WireDecodingError)
}

extension WireMessage {
    /// Encodes the message into a new array of exactly ``serializedSize()`` bytes.
    @inlinable
    public func serializedBytes() -> [UInt8] {
        let size = serializedSize()
        func write(into buffer: UnsafeMutableRawBufferPointer) {
            var writer = WireWriter(buffer: buffer)
            encode(to: &writer)
            precondition(writer.bytesWritten == size, "WireMessage: encode(to:) disagrees with serializedSize()")
        }
        // Small messages are written on the stack and copied: cheaper than uninitialised array storage.
        if size <= 256 {
            return withUnsafeTemporaryAllocation(byteCount: size, alignment: 1) { buffer in
                write(into: buffer)
                return [UInt8](copyingBytes: UnsafeRawBufferPointer(buffer))
            }
        }
        return [UInt8](uninitializedCount: size, initializingBytesWith: write)
    }

    /// Appends the encoded message to `buffer`, which may be reused from message to message.
    ///
    /// - Parameter buffer: Bytes to append to; keep its capacity between messages to avoid allocating.
    @inlinable
    public func serialize(into buffer: inout [UInt8]) {
        let size = serializedSize()
        let start = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: size))
        buffer.withUnsafeMutableBytes { bytes in
            var writer = WireWriter(buffer: UnsafeMutableRawBufferPointer(rebasing: bytes[start...]))
            encode(to: &writer)
            precondition(writer.bytesWritten == size, "WireMessage: encode(to:) disagrees with serializedSize()")
        }
    }

    /// Encodes the message into caller-provided memory of exactly ``serializedSize()`` bytes, such as a
    /// socket's send buffer.
    ///
    /// - Parameter buffer: Exactly ``serializedSize()`` bytes; a different size stops the program.
    @inlinable
    public func serialize(into buffer: UnsafeMutableRawBufferPointer) {
        var writer = WireWriter(buffer: buffer)
        encode(to: &writer)
        precondition(writer.bytesWritten == buffer.count, "WireMessage: buffer is not serializedSize() bytes")
    }

    /// Decodes a message from borrowed bytes.
    ///
    /// - Parameters:
    ///   - bytes: One whole encoded message.
    ///   - options: Limits for decoding.
    /// - Throws: ``WireDecodingError`` for malformed input; never traps.
    @inlinable
    public init(serializedBytes bytes: UnsafeRawBufferPointer, options: WireDecodingOptions = WireDecodingOptions()) throws(WireDecodingError) {
        var reader = WireReader(bytes: bytes, options: options)
        self.init()
        try merge(from: &reader)
    }

    /// Decodes a message from an array of bytes.
    ///
    /// - Parameters:
    ///   - bytes: One whole encoded message.
    ///   - options: Limits for decoding.
    /// - Throws: ``WireDecodingError`` for malformed input; never traps.
    @inlinable
    public init(serializedBytes bytes: [UInt8], options: WireDecodingOptions = WireDecodingOptions()) throws(WireDecodingError) {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(WireDecodingError) in try Self(serializedBytes: raw, options: options) }
        }
        self = try result.get()
    }

    /// Decodes a message from a slice of an array.
    ///
    /// - Parameters:
    ///   - bytes: One whole encoded message.
    ///   - options: Limits for decoding.
    /// - Throws: ``WireDecodingError`` for malformed input; never traps.
    @inlinable
    public init(serializedBytes bytes: ArraySlice<UInt8>, options: WireDecodingOptions = WireDecodingOptions()) throws(WireDecodingError) {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(WireDecodingError) in try Self(serializedBytes: raw, options: options) }
        }
        self = try result.get()
    }
}

/// An enum generated from a schema: an `Int32` on the wire, with a case for values this schema does
/// not know so that they survive decoding and re-encoding.
public protocol WireEnum: Sendable, Hashable {
    /// Creates the case for `rawValue`, or `unrecognized(rawValue)`.
    init(rawValue: Int32)
    /// The number on the wire.
    var rawValue: Int32 { get }
}

/// Holds a message field whose type contains the message itself, so that the struct has a finite size.
///
/// Generated code hides the box behind an ordinary optional property; it is immutable, so copies
/// share it safely and a change replaces it.
public final class WireIndirect<Value: Hashable & Sendable>: Hashable, Sendable {
    /// The boxed message.
    public let value: Value

    /// Boxes `value`.
    @inlinable
    public init(_ value: Value) {
        self.value = value
    }

    public static func == (lhs: WireIndirect, rhs: WireIndirect) -> Bool {
        lhs.value == rhs.value
    }

    public func hash(into hasher: inout Hasher) {
        value.hash(into: &hasher)
    }
}
