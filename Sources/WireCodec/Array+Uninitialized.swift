extension Array where Element: BitwiseCopyable {
    /// Creates an array of `count` elements whose bytes `initialize` writes, without zeroing them first.
    ///
    /// `Array(unsafeUninitializedCapacity:initializingWith:)` takes an unspecialised path through the
    /// standard library on Linux that looks up generic metadata on every call (about 150 ns);
    /// `ContiguousArray`'s initialiser costs less, and turning it into an `Array` is free.
    @inlinable
    init(uninitializedCount count: Int, initializingBytesWith initialize: (UnsafeMutableRawBufferPointer) -> Void) {
        let contiguous = ContiguousArray<Element>(unsafeUninitializedCapacity: count) { buffer, initializedCount in
            initialize(UnsafeMutableRawBufferPointer(buffer))
            initializedCount = count
        }
        self.init(contiguous)
    }

    /// Creates an array from the little-endian bytes of its elements, in one copy.
    ///
    /// Aligned bytes go through `Array(UnsafeBufferPointer)`, the fastest way the standard library
    /// offers (fully specialised); bytes at an odd address cannot be viewed as typed elements, so they
    /// are copied into uninitialised storage instead.
    ///
    /// - Parameter bytes: A multiple of `MemoryLayout<Element>.stride` bytes.
    @inlinable
    init(copyingBytes bytes: UnsafeRawBufferPointer) {
        let count = bytes.count / MemoryLayout<Element>.stride
        if Int(bitPattern: bytes.baseAddress) % MemoryLayout<Element>.alignment == 0 {
            self.init(UnsafeBufferPointer(start: bytes.baseAddress?.assumingMemoryBound(to: Element.self), count: count))
        } else {
            self.init(uninitializedCount: count) { $0.copyMemory(from: bytes) }
        }
    }
}

extension String {
    /// Creates a string from UTF-8 bytes, or returns `nil` when they are not valid UTF-8.
    ///
    /// ASCII, the common case, is checked eight bytes at a time. Otherwise `String(decoding:as:)`
    /// repairs invalid sequences with U+FFFD, so the bytes were valid exactly when the result's UTF-8
    /// equals them.
    @inlinable
    init?(validatingUTF8Bytes bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        var index = 0
        while index &+ 8 <= count,
            bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0
        {
            index &+= 8
        }
        while index < count, bytes[index] < 0x80 {
            index &+= 1
        }
        let string = String(decoding: bytes.assumingMemoryBound(to: UInt8.self), as: UTF8.self)
        if index == count {
            self = string
            return
        }
        var copy = string
        let isValid = copy.withUTF8 { UnsafeRawBufferPointer($0).elementsEqual(bytes) }
        guard isValid else { return nil }
        self = string
    }
}
