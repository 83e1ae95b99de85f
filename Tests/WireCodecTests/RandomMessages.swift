/// Builds random conformance messages from a seed, leaning on edge values: 0, ±1, the extremes of
/// each width, infinities, -0.0, empty and non-ASCII text. NaN is left out because NaN != NaN.
struct RandomMessages {
    var generator: SeededGenerator
    /// The most entries a map gets; 1 keeps protoc's map order out of byte comparisons.
    var maxMapEntries = 3
    /// Whether one repeated field in ten gets up to 300 elements; small messages put a mutation test's
    /// changes on tags and lengths rather than in long runs of packed numbers.
    var longLists = true

    init(seed: UInt64) {
        self.generator = SeededGenerator(seed: seed)
    }

    mutating func chance(_ percent: Int) -> Bool {
        Int.random(in: 0..<100, using: &generator) < percent
    }

    mutating func integer<T: FixedWidthInteger>(_: T.Type = T.self) -> T {
        switch Int.random(in: 0..<6, using: &generator) {
        case 0: 0
        case 1: T.max
        case 2: T.min
        case 3: T.isSigned ? -1 : 1
        case 4: T(truncatingIfNeeded: Int.random(in: -300...300, using: &generator))
        default: T(truncatingIfNeeded: generator.next())
        }
    }

    mutating func float() -> Float {
        let edges: [Float] = [0, -0.0, 1, -1, .infinity, -.infinity, .greatestFiniteMagnitude, .leastNonzeroMagnitude, 0.1]
        if chance(50) { return edges.randomElement(using: &generator)! }
        let value = Float(bitPattern: UInt32(truncatingIfNeeded: generator.next()))
        return value.isNaN ? 1.5 : value
    }

    mutating func double() -> Double {
        let edges: [Double] = [0, -0.0, 1, -1, .infinity, -.infinity, .greatestFiniteMagnitude, .leastNonzeroMagnitude, 0.1]
        if chance(50) { return edges.randomElement(using: &generator)! }
        let value = Double(bitPattern: generator.next())
        return value.isNaN ? 2.5 : value
    }

    mutating func string() -> String {
        let samples = ["", "a", "worker-1@host", "héllo wörld", "日本語のテキスト", "🙂👍🏽", "tab\tnew\nline", "\u{0}"]
        if chance(70) { return samples.randomElement(using: &generator)! }
        let length = Int.random(in: 0..<40, using: &generator)
        return String((0..<length).map { _ in Character(Unicode.Scalar(UInt8.random(in: 32...126, using: &generator))) })
    }

    mutating func bytes() -> [UInt8] {
        (0..<Int.random(in: 0..<20, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    mutating func color() -> Color {
        [Color.unspecified, .red, .green, .infrared].randomElement(using: &generator)!
    }

    mutating func list<T>(_ element: (inout RandomMessages) -> T) -> [T] {
        (0..<Int.random(in: 0..<(longLists && chance(10) ? 300 : 5), using: &generator)).map { _ in element(&self) }
    }

    mutating func maybe<T>(_ value: (inout RandomMessages) -> T) -> T? {
        chance(50) ? value(&self) : nil
    }

    mutating func scalars() -> Scalars {
        Scalars(
            fDouble: double(), fFloat: float(), fInt32: integer(), fInt64: integer(), fUint32: integer(),
            fUint64: integer(), fSint32: integer(), fSint64: integer(), fFixed32: integer(), fFixed64: integer(),
            fSfixed32: integer(), fSfixed64: integer(), fBool: chance(50), fString: string(), fBytes: bytes(),
            fColor: color()
        )
    }

    mutating func optionals() -> OptionalScalars {
        OptionalScalars(
            fDouble: maybe { $0.double() }, fFloat: maybe { $0.float() }, fInt32: maybe { $0.integer() },
            fInt64: maybe { $0.integer() }, fUint32: maybe { $0.integer() }, fUint64: maybe { $0.integer() },
            fSint32: maybe { $0.integer() }, fSint64: maybe { $0.integer() }, fFixed32: maybe { $0.integer() },
            fFixed64: maybe { $0.integer() }, fSfixed32: maybe { $0.integer() }, fSfixed64: maybe { $0.integer() },
            fBool: maybe { $0.chance(50) }, fString: maybe { $0.string() }, fBytes: maybe { $0.bytes() },
            fColor: maybe { $0.color() }
        )
    }

    mutating func lists() -> RepeatedScalars {
        RepeatedScalars(
            fDouble: list { $0.double() }, fFloat: list { $0.float() }, fInt32: list { $0.integer() },
            fInt64: list { $0.integer() }, fUint32: list { $0.integer() }, fUint64: list { $0.integer() },
            fSint32: list { $0.integer() }, fSint64: list { $0.integer() }, fFixed32: list { $0.integer() },
            fFixed64: list { $0.integer() }, fSfixed32: list { $0.integer() }, fSfixed64: list { $0.integer() },
            fBool: list { $0.chance(50) }, fString: list { $0.string() }, fBytes: list { $0.bytes() },
            fColor: list { $0.color() }
        )
    }

    mutating func map<K: Hashable, V>(_ key: (inout RandomMessages) -> K, _ value: (inout RandomMessages) -> V) -> [K: V] {
        var map: [K: V] = [:]
        for _ in 0..<Int.random(in: 0...maxMapEntries, using: &generator) {
            map[key(&self)] = value(&self)
        }
        return map
    }

    mutating func tree(depth: Int) -> Tree {
        guard depth > 0 else { return Tree(label: string()) }
        var tree = Tree(label: string())
        if chance(40) { tree.left = self.tree(depth: depth - 1) }
        if chance(40) { tree.right = self.tree(depth: depth - 1) }
        if chance(20) { tree.forest = (0..<2).map { _ in self.tree(depth: depth - 1) } }
        switch Int.random(in: 0..<3, using: &generator) {
        case 0: tree.extra = .only(self.tree(depth: depth - 1))
        case 1: tree.extra = .leaf(integer())
        default: break
        }
        return tree
    }

    mutating func nested(depth: Int) -> Everything.Nested {
        Everything.Nested(
            mood: Everything.Nested.Mood.allCases.randomElement(using: &generator)!,
            children: depth > 0 && chance(50) ? [nested(depth: depth - 1)] : []
        )
    }

    mutating func everything() -> Everything {
        var message = Everything()
        if chance(70) { message.scalars = scalars() }
        if chance(70) { message.optionals = optionals() }
        if chance(70) { message.lists = lists() }
        switch Int.random(in: 0..<5, using: &generator) {
        case 0: message.choice = .choiceText(string())
        case 1: message.choice = .choiceNumber(integer())
        case 2: message.choice = .choicePoint(Point(x: integer(), y: integer()))
        case 3: message.choice = .choiceColor(color())
        default: break
        }
        message.counts = map({ $0.string() }, { $0.integer() })
        message.points = map({ $0.integer() }, { Point(x: $0.integer(), y: $0.integer()) })
        message.flags = map({ $0.chance(50) }, { $0.string() })
        message.colors = map({ $0.integer() }, { $0.color() })
        if chance(50) { message.nested = nested(depth: 3) }
        if chance(50) { message.tree = tree(depth: 4) }
        message.default = string()
        message.self_ = chance(50)
        message.unknownFields_ = chance(50)
        message.serializedSize_ = integer()
        message.justBelowProtobufRange = integer()
        message.justAboveProtobufRange = integer()
        message.largestFieldNumber = integer()
        return message
    }
}
