import Messages
import TensorEncoding

/// A worker's side of the map: cutting an update into the shards' slices and putting the shards'
/// weights back together.
extension ShardMap {
    /// The weights of a unit: the shards' slices put end to end, in the map's order.
    /// - Precondition: One slice per range, each of its range's length.
    func join(_ slices: [[Float]]) -> [Float] {
        precondition(slices.count == ranges.count, "\(slices.count) slices for \(ranges.count) shards")
        var whole: [Float] = []
        whole.reserveCapacity(parameterCount)
        for (range, slice) in zip(ranges, slices) {
            precondition(slice.count == range.count, "a slice of \(slice.count) values for shard \(range.index)'s \(range.count)")
            whole.append(contentsOf: slice)
        }
        return whole
    }

    /// The slice of `values` each shard holds, in the map's order.
    /// - Precondition: `values` holds ``parameterCount`` values.
    func slices(of values: [Float]) -> [[Float]] {
        precondition(values.count == parameterCount, "\(values.count) values for a map of \(parameterCount)")
        return ranges.map { Array(values[$0.indices]) }
    }
}

extension ShardMap.Range {
    /// The encoding a Welcome names (for the whole buffer of `parameterCount` values), for this
    /// range's slices. `topk` keeps the range's share of k (k · count / P, rounded, at least 1), so the
    /// slices of an update carry as many entries together as one whole push would, and each shard's
    /// error feedback keeps the rest; the other encodings do not depend on the length.
    /// - Throws: `EncodingChoiceError` for an encoding the whole buffer could not use either.
    func encoding(wire: Messages.Encoding?, parameterCount: Int) throws(EncodingChoiceError) -> TensorEncoding {
        guard case .topK(let k) = try TensorEncoding(wire: wire, count: parameterCount) else {
            return try TensorEncoding(wire: wire, count: count)
        }
        let share = (Double(k) * Double(count) / Double(parameterCount)).rounded()
        return .topK(count: Swift.min(count, Swift.max(1, Int(share))))
    }
}
