import Testing
@testable import TensorEncoding

/// The radix selection against a full sort: the same entries, ties to the lowest index, for vectors
/// full of ties, zeros, subnormals, infinities and NaNs.
@Suite("topk selection")
struct TopKSelectionTests {
    /// The indices of the k largest |x| by sorting: magnitude (as bits, so NaN is largest) descending,
    /// then index ascending; returned in ascending order.
    static func referenceSelection(_ values: [Float], k: Int) -> [Int] {
        let order = values.indices.sorted {
            let a = values[$0].bitPattern & 0x7FFF_FFFF
            let b = values[$1].bitPattern & 0x7FFF_FFFF
            return a != b ? a > b : $0 < $1
        }
        return order.prefix(k).sorted()
    }

    /// The indices and binary16 values of a topk payload, read with an independent varint reader.
    static func entries(_ bytes: [UInt8]) -> (indices: [Int], halves: [UInt16]) {
        let k = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
        var position = 4
        var index = -1
        var indices: [Int] = []
        for _ in 0..<k {
            var code = 0
            var shift = 0
            repeat {
                code |= Int(bytes[position] & 0x7F) << shift
                shift += 7
                position += 1
            } while bytes[position - 1] & 0x80 != 0
            index += code + 1
            indices.append(index)
        }
        #expect(position == bytes.count - 2 * k, "the indices end where the values start")
        let halves = (0..<k).map { UInt16(bytes[position + 2 * $0]) | UInt16(bytes[position + 2 * $0 + 1]) << 8 }
        return (indices, halves)
    }

    /// Vectors of the kinds that stress a selection: few distinct magnitudes (ties everywhere), one
    /// value repeated, all zeros, wide spreads, and infinities and NaNs mixed in.
    static func vector(kind: Int, count: Int, using generator: inout SeededGenerator) -> [Float] {
        switch kind {
        case 0: return (0..<count).map { _ in [0, 1, -1, 2, -2, 0.5][Int.random(in: 0..<6, using: &generator)] }
        case 1: return Array(repeating: -3, count: count)
        case 2: return (0..<count).map { _ in Bool.random(using: &generator) ? 0 : -0.0 }
        case 3: return randomVector(count: count, using: &generator, edges: true)
        case 4:
            var values = randomVector(count: count, using: &generator)
            for _ in 0..<3 where count > 0 {
                values[Int.random(in: 0..<count, using: &generator)] = [.nan, .infinity, -.infinity][Int.random(in: 0..<3, using: &generator)]
            }
            return values
        default:
            // Magnitudes that share their top 11 bits and differ only in the lowest ones, so the
            // selection must go down all three levels.
            return (0..<count).map { _ in Float(bitPattern: 0x3F80_0000 | UInt32.random(in: 0..<1024, using: &generator)) }
        }
    }

    @Test("selects what a sort selects", arguments: 0..<6)
    func matchesSort(kind: Int) {
        var generator = SeededGenerator(seed: 100 + UInt64(kind))
        for _ in 0..<60 {
            let count = Int.random(in: 0...600, using: &generator)
            let values = Self.vector(kind: kind, count: count, using: &generator)
            for k in [0, 1, 2, count / 3, count - 1, count, count + 5] where k >= 0 {
                let bytes = TensorEncoding.topK(count: k).encoded(values)
                let (indices, halves) = Self.entries(bytes)
                #expect(indices == Self.referenceSelection(values, k: k), "kind \(kind), \(count) values, k = \(k)")
                let expectedHalves = TensorEncoding.fp16.encoded(indices.map { values[$0] })
                #expect(halves.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8($0 >> 8)] } == expectedHalves)
            }
        }
    }

    @Test("a large vector with k of 1 %, as a push of the MLP sends")
    func largeVector() {
        var generator = SeededGenerator(seed: 200)
        let values = randomVector(count: 407_050, using: &generator)
        let bytes = TensorEncoding.topK(count: 4070).encoded(values)
        #expect(Self.entries(bytes).indices == Self.referenceSelection(values, k: 4070))
    }

    @Test("every entry kept is at least as large as every entry dropped")
    func keptDominatesDropped() {
        var generator = SeededGenerator(seed: 300)
        let values = randomVector(count: 5000, using: &generator)
        let kept = Set(Self.entries(TensorEncoding.topK(count: 123).encoded(values)).indices)
        let smallestKept = kept.map { values[$0].magnitude }.min()!
        let largestDropped = values.indices.filter { !kept.contains($0) }.map { values[$0].magnitude }.max()!
        #expect(kept.count == 123)
        #expect(smallestKept >= largestDropped)
    }

    /// Whether the sampled path handled the vector (true) or left it to the full selection (false).
    static func sampledPathTaken(_ values: [Float], k: Int) -> Bool {
        let reserved = TopKEncoding.maxSize(count: values.count, entries: k)
        var output = [UInt8](repeating: 0, count: reserved)
        return values.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBytes { bytes in
                var writer = TopKEncoding.EntryWriter(output: bytes.baseAddress!, valueArea: reserved - 2 * k)
                return TopKEncoding.writeSampled(x.baseAddress!, count: x.count, entries: k, into: &writer)
            }
        }
    }

    @Test("vectors that mislead the sample fall back to the full selection and still select right")
    func misleadingSamples() {
        let n = 40_000
        let k = 1000
        var generator = SeededGenerator(seed: 400)
        // Ordinary values: the sample finds a threshold and the candidates hold the k.
        let ordinary = randomVector(count: n, using: &generator)
        #expect(Self.sampledPathTaken(ordinary, k: k))
        // Every sampled value (each 16th) tiny, all others large: the sampled threshold lets nearly
        // everything through, more candidates than there is room for.
        let tinySamples = (0..<n).map { i -> Float in i % 16 == 0 ? 1e-6 : Float.random(in: 1...2, using: &generator) }
        // A few sampled values huge and everything else small: the threshold is so high that fewer
        // than k values reach it.
        let hugeSamples = (0..<n).map { i -> Float in
            let sampledAndEarly = i % 16 == 0 && i < 1600
            return sampledAndEarly ? 1000 + Float(i) : 0.001 * Float(i % 7)
        }
        for values in [tinySamples, hugeSamples] {
            #expect(!Self.sampledPathTaken(values, k: k))
            #expect(Self.entries(TensorEncoding.topK(count: k).encoded(values)).indices == Self.referenceSelection(values, k: k))
        }
    }

    @Test("the sampled path and the full selection agree on residuals piled up under a threshold")
    func errorFeedbackResiduals() throws {
        // Error feedback leaves many residuals just below the last threshold: a hard case for a
        // sampled estimate. Both paths must keep choosing exactly what a sort chooses.
        var generator = SeededGenerator(seed: 401)
        let n = 50_000
        var compressor = ErrorFeedbackEncoder(count: n, encoding: .topK(count: 500))
        for step in 0..<10 {
            let g = randomVector(count: n, using: &generator).map { $0 * 1e-3 }
            let accumulator = zip(compressor.residual, g).map { $0 + $1 }
            let payload = try compressor.encode(g)
            #expect(Self.entries(payload).indices == Self.referenceSelection(accumulator, k: 500), "step \(step)")
        }
    }
}
