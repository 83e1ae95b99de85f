/// Turns valid encodings into hostile ones, from a seed: byte-level damage (flipped bits, bytes
/// inserted, deleted, duplicated, a cut) and structural changes at any depth that keep every length
/// right (a field re-sent with another wire type, an extra field, a tag padded to two to six bytes, a
/// field repeated or removed), so that decoders are compared on both garbage and near misses.
struct MessageMutator {
    var generator: SeededGenerator

    init(seed: UInt64) {
        self.generator = SeededGenerator(seed: seed)
    }

    mutating func below(_ bound: Int) -> Int {
        Int.random(in: 0..<bound, using: &generator)
    }

    /// One to three mutations of `bytes`, structural ones first.
    mutating func mutate(_ bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        for _ in 0...below(3) {
            bytes = below(2) == 0 ? structural(bytes, depth: 0) : byteLevel(bytes)
        }
        return bytes
    }

    // MARK: Byte level

    mutating func byteLevel(_ bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        if bytes.isEmpty { return [UInt8(truncatingIfNeeded: below(256))] }
        let index = below(bytes.count)
        switch below(7) {
        case 0: bytes[index] ^= 1 << UInt8(below(8))
        case 1: bytes[index] = UInt8(truncatingIfNeeded: below(256))
        case 2: bytes[index] = [0x00, 0x01, 0x7F, 0x80, 0xFF][below(5)]
        case 3: bytes.insert(contentsOf: (0...below(3)).map { _ in UInt8(truncatingIfNeeded: below(256)) }, at: index)
        case 4: bytes.removeSubrange(index..<min(bytes.count, index + 1 + below(8)))
        case 5:
            let chunk = bytes[index..<min(bytes.count, index + 1 + below(16))]
            bytes.insert(contentsOf: chunk, at: below(bytes.count + 1))
        default: bytes.removeSubrange(index...)
        }
        return bytes
    }

    // MARK: Structural

    /// One field of a message: its tag as encoded, and the rest of the field.
    struct Field {
        var number: UInt64
        var wireType: UInt8
        var tag: [UInt8]
        var value: [UInt8]
        var bytes: [UInt8] { tag + value }
    }

    /// Changes a message at this depth, or descends into a length-delimited field that holds a message
    /// and changes that, rewriting its length.
    mutating func structural(_ message: [UInt8], depth: Int) -> [UInt8] {
        guard var fields = Self.fields(message) else { return message }
        let nested = fields.indices.filter { fields[$0].wireType == 2 && Self.payload(of: fields[$0]).flatMap(Self.fields) != nil }
        if depth < 6, !nested.isEmpty, below(2) == 0 {
            let index = nested[below(nested.count)]
            let inner = structural(Self.payload(of: fields[index])!, depth: depth + 1)
            fields[index].value = Self.varint(UInt64(inner.count)) + inner
            return fields.flatMap(\.bytes)
        }
        let numbers: [UInt64] = Array(1...20) + [18_999, 20_000, 536_870_911]
        switch below(fields.isEmpty ? 1 : 5) {
        case 0:
            // A field, known or not, with any wire type.
            let number = numbers[below(numbers.count)]
            fields.insert(field(number, wireType: [0, 1, 2, 3, 5][below(5)]), at: below(fields.count + 1))
        case 1:
            // The same field number with another wire type.
            let index = below(fields.count)
            let wireTypes = [UInt8(0), 1, 2, 3, 5].filter { $0 != fields[index].wireType }
            fields[index] = field(fields[index].number, wireType: wireTypes[below(wireTypes.count)])
        case 2:
            // A tag padded with 0x80 bytes: up to five bytes are a valid tag, six are not.
            let index = below(fields.count)
            let canonical = Self.varint(fields[index].number << 3 | UInt64(fields[index].wireType))
            let length = min(6, canonical.count + 1 + below(6 - canonical.count))
            var padded = canonical.map { $0 | 0x80 } + Array(repeating: 0x80, count: length - canonical.count)
            padded[padded.count - 1] = 0x00
            fields[index].tag = padded
        case 3:
            fields.insert(fields[below(fields.count)], at: below(fields.count + 1))
        default:
            fields.remove(at: below(fields.count))
        }
        return fields.flatMap(\.bytes)
    }

    /// A well-formed field of `number` and `wireType` with a value chosen to be interesting.
    mutating func field(_ number: UInt64, wireType: UInt8) -> Field {
        let value: [UInt8]
        switch wireType {
        case 0: value = Self.varint([0, 1, 150, 1 << 31, 1 << 32, 1 << 63, .max][below(7)])
        case 1: value = (0..<8).map { _ in UInt8(truncatingIfNeeded: below(256)) }
        case 5: value = (0..<4).map { _ in UInt8(truncatingIfNeeded: below(256)) }
        case 3: value = [0x08, 0x01] + Self.varint(number << 3 | 4)
        default:
            let payloads: [[UInt8]] = [[], [0x08, 0x01], [0x61, 0x62], [0x0A, 0x00, 0x10, 0x01], [0xC3, 0x28], [1, 2, 3, 4]]
            let payload = payloads[below(payloads.count)]
            value = Self.varint(UInt64(payload.count)) + payload
        }
        return Field(number: number, wireType: wireType, tag: Self.varint(number << 3 | UInt64(wireType)), value: value)
    }

    /// The fields of a message, or `nil` when it is not one: groups and malformed bytes count as not.
    static func fields(_ message: [UInt8]) -> [Field]? {
        var fields: [Field] = []
        var position = 0
        while position < message.count {
            let start = position
            guard let tag = readVarint(message, &position), tag >> 3 != 0, tag >> 3 <= 536_870_911 else { return nil }
            let tagEnd = position
            switch tag & 7 {
            case 0: guard readVarint(message, &position) != nil else { return nil }
            case 1: position += 8
            case 5: position += 4
            case 2:
                guard let length = readVarint(message, &position), length <= UInt64(message.count - position) else { return nil }
                position += Int(length)
            default: return nil
            }
            guard position <= message.count else { return nil }
            fields.append(Field(
                number: tag >> 3, wireType: UInt8(tag & 7), tag: Array(message[start..<tagEnd]),
                value: Array(message[tagEnd..<position])
            ))
        }
        return fields
    }

    /// The bytes after a length-delimited field's length, or `nil` for a field of another wire type.
    static func payload(of field: Field) -> [UInt8]? {
        guard field.wireType == 2 else { return nil }
        var position = 0
        guard readVarint(field.value, &position) != nil else { return nil }
        return Array(field.value[position...])
    }

    static func readVarint(_ bytes: [UInt8], _ position: inout Int) -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while position < bytes.count, shift < 64 {
            let byte = bytes[position]
            position += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
        }
        return nil
    }

    static func varint(_ value: UInt64) -> [UInt8] {
        WireReaderErrorTests.varint(value)
    }
}
