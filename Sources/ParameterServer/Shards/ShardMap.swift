import Messages

/// How a sharded session splits the flat parameter buffer: M contiguous ranges in order, balanced by
/// size (a tensor may be split between two shards).
///
/// ```swift
/// let map = ShardMap.balanced(parameterCount: 407_050, shards: 2)
/// map.ranges[1]   // offset 203_525, count 203_525
/// ```
public struct ShardMap: Sendable, Equatable {
    /// One shard's range: parameters `offset ..< offset + count`.
    public struct Range: Sendable, Equatable {
        /// The shard's place in the map, from 0.
        public var index: Int
        public var offset: Int
        public var count: Int

        public init(index: Int, offset: Int, count: Int) {
            self.index = index
            self.offset = offset
            self.count = count
        }

        /// The parameters it holds, as indices of the whole buffer.
        public var indices: Swift.Range<Int> { offset ..< offset + count }
    }

    /// The ranges, in order of offset.
    public let ranges: [Range]
    /// The length of the whole buffer.
    public let parameterCount: Int

    /// The word a worker adds to `Hello.capabilities.encodings` when it can work with shards.
    public static let capability = "shards"

    /// Splits `parameterCount` parameters into `shards` ranges whose sizes differ by at most one:
    /// shard i holds `[i * P / M, (i + 1) * P / M)`.
    public static func balanced(parameterCount: Int, shards: Int) -> ShardMap {
        precondition(shards >= 1 && parameterCount >= shards, "every shard holds at least one parameter")
        let ranges = (0..<shards).map { index in
            let start = index * parameterCount / shards
            let end = (index + 1) * parameterCount / shards
            return Range(index: index, offset: start, count: end - start)
        }
        return ShardMap(validated: ranges, parameterCount: parameterCount)
    }

    private init(validated ranges: [Range], parameterCount: Int) {
        self.ranges = ranges
        self.parameterCount = parameterCount
    }

    /// The map a Welcome carries, checked: the ranges must be in index order, non-empty, and cover the
    /// buffer exactly, one after another.
    /// - Throws: ``ShardMapError`` saying which endpoint is wrong.
    public init(endpoints: [ShardEndpoint], parameterCount: Int) throws(ShardMapError) {
        guard !endpoints.isEmpty else { throw ShardMapError("the shard map is empty") }
        var next = 0
        var ranges: [Range] = []
        for (position, endpoint) in endpoints.enumerated() {
            guard endpoint.index == UInt32(position) else {
                throw ShardMapError("Welcome.shards[\(position)] has index \(endpoint.index), expected \(position)")
            }
            guard endpoint.offset == UInt64(next) else {
                throw ShardMapError("Welcome.shards[\(position)] starts at parameter \(endpoint.offset), expected \(next): "
                    + "the ranges must follow one another")
            }
            guard endpoint.count > 0, endpoint.count <= UInt64(parameterCount - next) else {
                throw ShardMapError("Welcome.shards[\(position)] holds \(endpoint.count) parameters from \(endpoint.offset); "
                    + "the model has \(parameterCount)")
            }
            guard !endpoint.host.isEmpty, (1...65_535).contains(endpoint.port) else {
                throw ShardMapError("Welcome.shards[\(position)] has no address (host \"\(endpoint.host)\", port \(endpoint.port))")
            }
            ranges.append(Range(index: position, offset: next, count: Int(endpoint.count)))
            next += Int(endpoint.count)
        }
        guard next == parameterCount else {
            throw ShardMapError("the shard map covers \(next) of the model's \(parameterCount) parameters")
        }
        self.init(validated: ranges, parameterCount: parameterCount)
    }
}

/// Why a shard map cannot be used.
public struct ShardMapError: Error, Equatable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
