/// Why a payload was refused: the encoding, what was wrong, and where.
///
/// ```
/// fp16: 810 bytes for 406 values (expected 812)
/// q8: scale of block 3 (byte 780) is nan
/// topk: index 412000 at entry 17 (byte 40) is past the end (412000 values)
/// ```
public struct TensorDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was wrong with the payload.
    public enum Reason: Hashable, Sendable {
        /// The payload is `actual` bytes long, but the encoding gives `expected` bytes for `values`
        /// values (``TensorEncoding/topK(count:)`` payloads are checked against their entry count
        /// instead: ``entryCountDisagreesWithLength(entries:actual:minimum:maximum:)``).
        case wrongLength(actual: Int, expected: Int, values: Int)
        /// A block size that is not positive.
        case invalidBlockSize(Int)
        /// Value `index` (for ``TensorEncoding/topK(count:)``, the value of the entry with that index)
        /// is an infinity or a NaN; `bits` is its binary16, bfloat16 or binary32 bit pattern.
        case nonFiniteValue(index: Int, bits: UInt32)
        /// The scale of block `block` (binary32 bit pattern `bits`) is an infinity, a NaN or negative,
        /// or so large that 127 times it (``TensorEncoding/q8(blockSize:)``) is not finite.
        case invalidScale(block: Int, bits: UInt32)
        /// A ``TensorEncoding/q8(blockSize:)`` byte of value −128, outside −127…127, for value `index`.
        case quantizedValueOutOfRange(index: Int)
        /// The unused high bits of the last sign byte of block `block` are not zero.
        case nonZeroPadding(block: Int)
        /// A ``TensorEncoding/topK(count:)`` payload shorter than its 4-byte entry count.
        case missingEntryCount(actual: Int)
        /// A ``TensorEncoding/topK(count:)`` payload claims more entries than there are values.
        case tooManyEntries(entries: Int, values: Int)
        /// A ``TensorEncoding/topK(count:)`` payload of `actual` bytes cannot hold `entries` entries,
        /// which take between `minimum` and `maximum` bytes (indices of 1 to 5 bytes).
        case entryCountDisagreesWithLength(entries: Int, actual: Int, minimum: Int, maximum: Int)
        /// The varint of entry `entry` is longer than it needs to be, or holds more than 32 bits.
        case malformedVarint(entry: Int)
        /// The varint of entry `entry` runs into the values, which take the last 2k bytes.
        case indicesOverrunValues(entry: Int)
        /// The k varints end `extra` bytes before the values start: the payload has bytes that are
        /// neither indices nor values.
        case extraBytesAfterIndices(extra: Int)
        /// Entry `entry` has index `index`, which is not below the number of values, `values`.
        case indexPastEnd(entry: Int, index: Int, values: Int)
    }

    /// The encoding whose payload was refused.
    public var encoding: TensorEncoding
    /// What was wrong.
    public var reason: Reason
    /// Where in the payload: the first byte of the field at fault (for a wrong length, the length).
    public var offset: Int

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - encoding: The encoding whose payload was refused.
    ///   - reason: What was wrong.
    ///   - offset: The offset in the payload of the bytes at fault.
    public init(_ encoding: TensorEncoding, _ reason: Reason, offset: Int) {
        self.encoding = encoding
        self.reason = reason
        self.offset = offset
    }

    /// One line: the wire name, what was wrong, and where (the byte offset, `(byte 780)`).
    public var description: String {
        let name = encoding.name
        let at = "(byte \(offset))"
        switch reason {
        case .wrongLength(let actual, let expected, let values):
            return "\(name): \(actual) bytes for \(values) values (expected \(expected))"
        case .invalidBlockSize(let size):
            return "\(name): block size \(size) is not positive"
        case .nonFiniteValue(let index, let bits):
            return "\(name): value \(index) \(at) is \(Self.nonFiniteName(bits: bits, encoding: encoding))"
        case .invalidScale(let block, let bits):
            let scale = Float(bitPattern: bits)
            let problem =
                if scale.isNaN { "nan" } else if scale.isInfinite { "\(scale)" } else if scale < 0 { "negative (\(scale))" } else {
                    "\(scale), too large: 127 times it overflows"
                }
            return "\(name): scale of block \(block) \(at) is \(problem)"
        case .quantizedValueOutOfRange(let index):
            return "\(name): value \(index) \(at) is -128, outside -127...127"
        case .nonZeroPadding(let block):
            return "\(name): the unused bits of block \(block)'s last byte \(at) are not zero"
        case .missingEntryCount(let actual):
            return "\(name): \(actual) bytes, too short for the 4-byte entry count"
        case .tooManyEntries(let entries, let values):
            return "\(name): \(entries) entries for \(values) values"
        case .entryCountDisagreesWithLength(let entries, let actual, let minimum, let maximum):
            return "\(name): \(entries) entries take \(minimum) to \(maximum) bytes, not \(actual)"
        case .malformedVarint(let entry):
            return "\(name): the index of entry \(entry) \(at) is an overlong varint or exceeds 32 bits"
        case .indicesOverrunValues(let entry):
            return "\(name): the index of entry \(entry) \(at) runs into the values"
        case .extraBytesAfterIndices(let extra):
            return "\(name): \(extra) bytes between the last index and the values \(at)"
        case .indexPastEnd(let entry, let index, let values):
            return "\(name): index \(index) at entry \(entry) \(at) is past the end (\(values) values)"
        }
    }

    private static func nonFiniteName(bits: UInt32, encoding: TensorEncoding) -> String {
        let value: Float =
            switch encoding {
            case .fp32: Float(bitPattern: bits)
            case .bf16: Float(bitPattern: bits << 16)
            default: HalfPrecision.float(fromAnyHalf: UInt16(truncatingIfNeeded: bits))
            }
        return value.isNaN ? "nan" : "\(value)"
    }
}
