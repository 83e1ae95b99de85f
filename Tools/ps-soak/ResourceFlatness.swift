/// Whether one resource (resident memory, open descriptors) stayed flat over a server's incarnations.
///
/// Per incarnation, the samples before training started and in the first `warmup` seconds after are
/// left out (MNIST loading, the first evaluation's buffers, the workers connecting); the first sample after it is the baseline, and the
/// largest later sample may exceed it by at most the allowance. Across incarnations, no sample after
/// warm-up may exceed the first judged incarnation's baseline by more than its allowance: a leak that
/// a restart hides (each incarnation fresh, yet each starting higher) fails that way.
struct ResourceFlatness {
    /// One incarnation's figures.
    struct Incarnation {
        /// 1 for the first server, 2 for the first resumed one, ...
        let number: Int
        /// nil when it lived too briefly after warm-up to be judged.
        let baseline: Int?
        /// The largest sample after warm-up, nil when there was none.
        let maximum: Int?
        /// The allowance over the baseline.
        let allowance: Int?
        /// Whether its maximum stayed within baseline + allowance (true when not judged).
        var withinBound: Bool {
            guard let baseline, let maximum, let allowance else { return true }
            return maximum - baseline <= allowance
        }
    }

    /// Fewest samples after warm-up for an incarnation to be judged on its own.
    static let minimumSamples = 3

    let incarnations: [Incarnation]
    /// The first judged incarnation's baseline + allowance, the ceiling for every later sample.
    let ceiling: Int?
    /// The largest sample after warm-up in any incarnation.
    let maximum: Int?

    /// - Parameters:
    ///   - samples: Each incarnation's samples, in order.
    ///   - warmup: Seconds after the start of training left out.
    ///   - allowance: The growth allowed over a baseline.
    init(samples: [[ResourceSample]], value: (ResourceSample) -> Int, warmup: Double, allowance: (Int) -> Int) {
        var incarnations: [Incarnation] = []
        var ceiling: Int?
        var overall: Int?
        for (index, list) in samples.enumerated() {
            let settled = list.filter { ($0.sinceTraining ?? -1) >= warmup }.map(value)
            let maximum = settled.max()
            if let maximum { overall = max(overall ?? maximum, maximum) }
            guard settled.count >= Self.minimumSamples, let baseline = settled.first else {
                incarnations.append(Incarnation(number: index + 1, baseline: nil, maximum: maximum, allowance: nil))
                continue
            }
            let bound = allowance(baseline)
            if ceiling == nil { ceiling = baseline + bound }
            incarnations.append(Incarnation(number: index + 1, baseline: baseline, maximum: maximum, allowance: bound))
        }
        self.incarnations = incarnations
        self.ceiling = ceiling
        maximum = overall
    }

    /// Whether any incarnation lived long enough to be judged.
    var judged: Bool { ceiling != nil }

    /// Judged, every incarnation within its bound, and nothing above the ceiling.
    var passed: Bool {
        guard let ceiling, let maximum else { return false }
        return incarnations.allSatisfy(\.withinBound) && maximum <= ceiling
    }

    /// The largest growth over its own baseline in any judged incarnation.
    var largestGrowth: Int {
        incarnations.compactMap { incarnation in
            incarnation.baseline.flatMap { baseline in incarnation.maximum.map { $0 - baseline } }
        }.max() ?? 0
    }
}
