extension RunReport {
    /// One range held by one shard, from its assignment to the next (a new holder, or a rollback that
    /// restarted the holder's counts) or the session's end: its points in time order.
    struct ShardStretch {
        var index: Int
        var shard: String
        var points: [SessionHistory.ShardPoint]
    }

    /// The colours of the shards' lines, by range index (repeating past ten).
    private static let shardColors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                                      "#7f7f7f", "#bcbd22", "#17becf"]

    /// The "Shards" section of a sharded session: each shard's updates and frame bytes per second and
    /// mean staleness over time, and a table of each range's holders. Empty when the history has no
    /// shard points (a session without `--shards`).
    static func shardSection(_ history: SessionHistory) -> String {
        guard !history.shards.isEmpty else { return "" }
        let stretches = shardStretches(history.shards)
        // One line per range, whoever held it: a new holder starts from zero, so its rates carry on.
        func lines(_ value: (SessionHistory.ShardPoint, SessionHistory.ShardPoint) -> Double?)
            -> [(name: String, color: String, points: [(Double, Double)])] {
            let indices = Set(stretches.map(\.index)).sorted()
            return indices.map { index in
                let points = stretches.filter { $0.index == index }.flatMap { stretch in
                    zip(stretch.points, stretch.points.dropFirst()).compactMap { previous, next in
                        value(previous, next).map { (next.seconds, $0) }
                    }
                }
                return ("shard \(index)", shardColors[index % shardColors.count], points.sorted { $0.0 < $1.0 })
            }
        }
        let updateRates = lines { previous, next in
            rate(Double(next.updates) - Double(previous.updates), from: previous, to: next)
        }
        let byteRates = lines { previous, next in
            rate(Double(next.bytesIn &+ next.bytesOut) - Double(previous.bytesIn &+ previous.bytesOut), from: previous, to: next)
        }
        let staleness = lines { _, next in next.stalenessMean }
        var section = "<h2>Shards</h2>\n<div class=\"charts\">\n"
        section += figure("Updates applied per second on each shard over time (s)", lineChart(updateRates))
        section += figure("Frame bytes in and out per second on each shard over time (s)", lineChart(byteRates, y: .bytes))
        section += figure("Mean staleness of each shard's applied slices since its assignment, over time (s)", lineChart(staleness))
        section += "</div>\n"
        section += holderTable(stretches)
        return section
    }

    /// The points cut into stretches: by range, in time order, a new stretch wherever the holder
    /// changes or a count goes down (the range was assigned again after a rollback, and its holder
    /// counts from zero).
    static func shardStretches(_ points: [SessionHistory.ShardPoint]) -> [ShardStretch] {
        // Stable: points of one moment keep their order.
        let ordered = points.enumerated().sorted { ($0.element.index, $0.element.seconds, $0.offset) < ($1.element.index, $1.element.seconds, $1.offset) }
        var stretches: [ShardStretch] = []
        for point in ordered.map(\.element) {
            if let last = stretches.last?.points.last, stretches[stretches.count - 1].index == point.index,
               stretches[stretches.count - 1].shard == point.shard, point.updates >= last.updates,
               point.bytesIn >= last.bytesIn, point.bytesOut >= last.bytesOut {
                stretches[stretches.count - 1].points.append(point)
            } else {
                stretches.append(ShardStretch(index: point.index, shard: point.shard, points: [point]))
            }
        }
        return stretches
    }

    /// `change` per second between two points of one stretch; nil for points of the same moment (the
    /// session's last figures can repeat the last second's).
    private static func rate(_ change: Double, from previous: SessionHistory.ShardPoint, to next: SessionHistory.ShardPoint) -> Double? {
        next.seconds > previous.seconds ? change / (next.seconds - previous.seconds) : nil
    }

    /// Each stretch's holder, time span and last figures: every rollback and reassignment is a row.
    private static func holderTable(_ stretches: [ShardStretch]) -> String {
        var table = "<table>\n<tr><th>range</th><th>shard</th><th>from (s)</th><th>to (s)</th><th>updates</th><th>bytes in</th>"
            + "<th>bytes out</th><th>staleness mean</th><th>staleness max</th><th>workers</th></tr>\n"
        for stretch in stretches {
            guard let first = stretch.points.first, let last = stretch.points.last else { continue }
            let cells = [
                String(stretch.index), escape(stretch.shard), format(first.seconds), format(last.seconds), String(last.updates),
                byteSize(Double(last.bytesIn)), byteSize(Double(last.bytesOut)), format(last.stalenessMean, digits: 3),
                String(last.stalenessMax), String(last.workers),
            ]
            table += "<tr>" + cells.map { "<td>\($0)</td>" }.joined() + "</tr>\n"
        }
        return table + "</table>\n"
    }
}
