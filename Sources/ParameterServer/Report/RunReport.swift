/// Renders a session's history as one self-contained HTML page: inline SVG charts and CSS, no scripts,
/// no external assets, so it can be mailed, archived or opened offline.
public enum RunReport {
    /// The page.
    public static func html(_ history: SessionHistory) -> String {
        // Every evaluation, at epoch ends and between them (--eval-every, --eval-interval).
        let evaluations = history.epochs.map { (seconds: $0.seconds, updates: $0.updates, bytes: $0.wireBytes, accuracy: $0.testAccuracy * 100) }
            + history.evaluations.map { (seconds: $0.seconds, updates: $0.updates, bytes: $0.wireBytes, accuracy: $0.testAccuracy * 100) }
        let accuracyByTime = evaluations.sorted { $0.seconds < $1.seconds }.map { ($0.seconds, $0.accuracy) }
        let accuracyByUpdates = evaluations.sorted { $0.updates < $1.updates }.map { (Double($0.updates), $0.accuracy) }
        // Points from checkpoints written before bytes were counted have none, and are left out.
        let accuracyByBytes = evaluations.filter { $0.bytes > 0 }.sorted { $0.bytes < $1.bytes }.map { (Double($0.bytes), $0.accuracy) }
        let testLoss = history.epochs.map { ($0.seconds, $0.testLoss) }
        let trainLoss = history.epochs.compactMap { point in point.trainLoss.map { (point.seconds, $0) } }
        var rates: [(Double, Double)] = []
        for (previous, next) in zip(history.throughput, history.throughput.dropFirst()) where next.seconds > previous.seconds {
            rates.append((next.seconds, Double(next.updates - previous.updates) / (next.seconds - previous.seconds)))
        }
        let (bytesPerSample, bytesPerSampleSoFar) = trafficPerSample(history.throughput)
        var page = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escape(history.title))</title>
        <style>
        body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }
        h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
        .charts { display: flex; flex-wrap: wrap; gap: 16px; }
        figure { margin: 0; border: 1px solid #ddd; padding: 8px; }
        figcaption { font-weight: 600; margin-bottom: 4px; }
        table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
        svg text { font: 11px system-ui, sans-serif; fill: #444; }
        </style></head><body>
        <h1>\(escape(history.title))</h1>

        """
        page += summaryParagraph(history)
        page += "<h2>Accuracy and loss</h2><div class=\"charts\">\n"
        page += figure("Test accuracy (%) over time (s)", lineChart([("test accuracy", "#1f77b4", accuracyByTime)]))
        page += figure("Test accuracy (%) over updates", lineChart([("test accuracy", "#1f77b4", accuracyByUpdates)], x: .count))
        page += figure("Test accuracy (%) over protocol bytes in and out", lineChart([("test accuracy", "#1f77b4", accuracyByBytes)], x: .bytes))
        page += figure("Loss over time (s)", lineChart([("test loss", "#d62728", testLoss), ("training loss", "#ff7f0e", trainLoss)]))
        page += "</div>\n<h2>Throughput, traffic and staleness</h2><div class=\"charts\">\n"
        page += figure("Updates per second over time (s)", lineChart([("updates/s", "#2ca02c", rates)]))
        page += figure("Protocol bytes per trained sample over time (s)", lineChart(
            [("each second", "#8c564b", bytesPerSample), ("so far", "#17becf", bytesPerSampleSoFar)], y: .bytes))
        page += figure("Staleness of applied updates", barChart(history.stalenessBuckets))
        page += "</div>\n"
        page += shardSection(history)
        page += "<h2>Workers</h2>\n"
        page += figure("Each worker's time in the session (s)", timeline(history.membership, duration: history.duration))
        page += membershipTable(history.membership)
        page += "<h2>Configuration</h2>\n<table>\n"
        for (key, value) in history.configuration {
            page += "<tr><th>\(escape(key))</th><td>\(escape(value))</td></tr>\n"
        }
        page += "</table>\n</body></html>\n"
        return page
    }

    // MARK: Pieces

    /// Protocol bytes per sample trained between neighbouring throughput points, and over the session
    /// so far, at each point. Intervals that trained nothing, and points with no byte count (from a
    /// checkpoint written before bytes were counted), are left out.
    static func trafficPerSample(_ points: [SessionHistory.ThroughputPoint]) -> (interval: [(Double, Double)], soFar: [(Double, Double)]) {
        var interval: [(Double, Double)] = []
        for (previous, next) in zip(points, points.dropFirst())
        where previous.wireBytes > 0 && next.wireBytes >= previous.wireBytes && next.samples > previous.samples {
            interval.append((next.seconds, Double(next.wireBytes - previous.wireBytes) / Double(next.samples - previous.samples)))
        }
        let soFar = points.filter { $0.wireBytes > 0 && $0.samples > 0 }.map { ($0.seconds, Double($0.wireBytes) / Double($0.samples)) }
        return (interval, soFar)
    }

    private static func summaryParagraph(_ history: SessionHistory) -> String {
        let keys = ["mode", "workers", "epochs", "updates", "samples", "seconds", "test_accuracy", "staleness_mean",
                    "bytes_in", "bytes_out", "bytes_per_sample", "shards", "shard_bytes_per_sample", "rollbacks", "requeued", "duplicates", "rejected", "joins", "leaves"]
        let cells = keys.compactMap { key in
            history.summary[key].map { value in
                var text = value
                // Large byte counts also in a unit a reader takes in at a glance.
                if key.hasPrefix("bytes_") || key.hasPrefix("shard_bytes_"), let bytes = Double(value), bytes >= 1000 {
                    text += " (\(byteSize(bytes)))"
                }
                return "<tr><th>\(key)</th><td>\(escape(text))</td></tr>"
            }
        }
        return "<table>\n" + cells.joined(separator: "\n") + "\n</table>\n"
    }

    /// A byte count in KB, MB or GB (powers of 1000) with up to 3 significant digits.
    static func byteSize(_ bytes: Double) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var (value, unit) = (bytes, 0)
        while abs(value) >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return "\(format(value, digits: abs(value) >= 100 ? 0 : abs(value) >= 10 ? 1 : 2)) \(units[unit])"
    }

    static func figure(_ caption: String, _ svg: String) -> String {
        "<figure><figcaption>\(escape(caption))</figcaption>\n\(svg)</figure>\n"
    }

    private static let width = 480.0
    private static let height = 260.0
    private static let margin = (left: 56.0, right: 30.0, top: 12.0, bottom: 34.0)

    /// Lines through each series' points, on shared axes with round ticks labelled in `x` and `y`,
    /// with a legend.
    static func lineChart(
        _ series: [(name: String, color: String, points: [(Double, Double)])], x: AxisTicks.Unit = .plain, y: AxisTicks.Unit = .plain
    ) -> String {
        let all = series.flatMap(\.points)
        guard !all.isEmpty else { return emptyChart("no data") }
        let xs = all.map(\.0), ys = all.map(\.1)
        // Time, update and byte counts start at zero, so the axis shows how long the first epoch took.
        let xTicks = AxisTicks.nice(min: Swift.min(0, xs.min()!), max: xs.max()!, count: 6, integers: x != .plain)
        let yTicks = AxisTicks.nice(min: ys.min()!, max: ys.max()!, count: 5, integers: y != .plain)
        let (x0, x1, y0, y1) = (xTicks.lower, xTicks.upper, yTicks.lower, yTicks.upper)
        var svg = chartFrame(x: (xTicks, x), y: (yTicks, y))
        for (index, line) in series.enumerated() where !line.points.isEmpty {
            let path = line.points.map { "\(format(xPosition($0.0, x0, x1))),\(format(yPosition($0.1, y0, y1)))" }
            svg += "<polyline fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"2\" points=\"\(path.joined(separator: " "))\"/>\n"
            for point in line.points {
                svg += "<circle cx=\"\(format(xPosition(point.0, x0, x1)))\" cy=\"\(format(yPosition(point.1, y0, y1)))\" r=\"3\" fill=\"\(line.color)\"><title>\(format(point.0)), \(format(point.1))</title></circle>\n"
            }
            svg += "<text x=\"\(format(margin.left + 8))\" y=\"\(format(margin.top + 14 + Double(index) * 14))\" style=\"fill:\(line.color)\">\(escape(line.name))</text>\n"
        }
        return svg + "</svg>\n"
    }

    /// One bar per bucket.
    static func barChart(_ buckets: [(label: String, count: UInt64)]) -> String {
        guard let largest = buckets.map(\.count).max(), largest > 0 else { return emptyChart("no updates") }
        let yTicks = AxisTicks.nice(min: 0, max: Double(largest), count: 5, integers: true)
        var svg = chartFrame(x: nil, y: (yTicks, .count))
        let plotWidth = width - margin.left - margin.right
        let slot = plotWidth / Double(buckets.count)
        for (index, bucket) in buckets.enumerated() {
            let top = yPosition(Double(bucket.count), 0, yTicks.upper)
            let x = margin.left + Double(index) * slot
            svg += "<rect x=\"\(format(x + 2))\" y=\"\(format(top))\" width=\"\(format(slot - 4))\" height=\"\(format(height - margin.bottom - top))\" fill=\"#9467bd\"><title>staleness \(escape(bucket.label)): \(bucket.count)</title></rect>\n"
            svg += "<text x=\"\(format(x + slot / 2))\" y=\"\(format(height - margin.bottom + 14))\" text-anchor=\"middle\">\(escape(bucket.label))</text>\n"
        }
        return svg + "</svg>\n"
    }

    /// One lane per worker, a bar for each stretch it spent in the session.
    static func timeline(_ events: [SessionHistory.MembershipEvent], duration: Double) -> String {
        var lanes: [String] = []
        var spans: [(worker: String, start: Double, end: Double?)] = []
        for event in events {
            if !lanes.contains(event.worker) { lanes.append(event.worker) }
            if event.joined {
                spans.append((event.worker, event.seconds, nil))
            } else if let open = spans.lastIndex(where: { $0.worker == event.worker && $0.end == nil }) {
                spans[open].end = event.seconds
            }
        }
        guard !lanes.isEmpty else { return emptyChart("no workers") }
        let ticks = AxisTicks.nice(min: 0, max: max(duration, events.map(\.seconds).max() ?? 0, 1e-3), count: 6)
        let end = ticks.upper
        let laneHeight = 22.0
        let chartHeight = margin.top + margin.bottom + laneHeight * Double(lanes.count)
        let labelWidth = 120.0
        let plotWidth = width * 1.6 - labelWidth - margin.right
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(format(width * 1.6))\" height=\"\(format(chartHeight))\">\n"
        for (index, lane) in lanes.enumerated() {
            let y = margin.top + Double(index) * laneHeight
            svg += "<text x=\"4\" y=\"\(format(y + 15))\">\(escape(String(lane.prefix(18))))</text>\n"
            for span in spans where span.worker == lane {
                let x = labelWidth + span.start / end * plotWidth
                let w = max(2, ((span.end ?? end) - span.start) / end * plotWidth)
                let color = span.end == nil ? "#2ca02c" : "#7f7f7f"
                svg += "<rect x=\"\(format(x))\" y=\"\(format(y + 4))\" width=\"\(format(w))\" height=\"\(format(laneHeight - 8))\" fill=\"\(color)\"><title>\(escape(lane)): \(format(span.start)) s to \(span.end.map { format($0) + " s" } ?? "the end")</title></rect>\n"
            }
        }
        let axisY = chartHeight - margin.bottom + 4
        svg += "<line x1=\"\(format(labelWidth))\" y1=\"\(format(axisY))\" x2=\"\(format(labelWidth + plotWidth))\" y2=\"\(format(axisY))\" stroke=\"#888\"/>\n"
        for value in ticks.values {
            let x = labelWidth + value / end * plotWidth
            svg += "<line x1=\"\(format(x))\" y1=\"\(format(axisY))\" x2=\"\(format(x))\" y2=\"\(format(axisY + 4))\" stroke=\"#888\"/>\n"
            svg += "<text x=\"\(format(x))\" y=\"\(format(axisY + 16))\" text-anchor=\"middle\">\(ticks.label(value))</text>\n"
        }
        return svg + "</svg>\n"
    }

    private static func membershipTable(_ events: [SessionHistory.MembershipEvent]) -> String {
        guard !events.isEmpty else { return "" }
        var table = "<table>\n<tr><th>time (s)</th><th>worker</th><th>event</th></tr>\n"
        for event in events {
            let what = event.joined ? "joined" : "left: \(event.reason)"
            table += "<tr><td>\(format(event.seconds))</td><td>\(escape(event.worker))</td><td>\(escape(what))</td></tr>\n"
        }
        return table + "</table>\n"
    }

    // MARK: Geometry

    /// The axes, a grid line and label at each of `y`'s ticks, and a tick mark and label at each of
    /// `x`'s (none for a bar chart, whose bars are labelled).
    private static func chartFrame(x: (ticks: AxisTicks, unit: AxisTicks.Unit)?, y: (ticks: AxisTicks, unit: AxisTicks.Unit)) -> String {
        let bottom = height - margin.bottom
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(format(width))\" height=\"\(format(height))\">\n"
        for value in y.ticks.values {
            let position = yPosition(value, y.ticks.lower, y.ticks.upper)
            svg += "<line x1=\"\(format(margin.left))\" y1=\"\(format(position))\" x2=\"\(format(width - margin.right))\" y2=\"\(format(position))\" stroke=\"#eee\"/>\n"
            svg += "<text x=\"\(format(margin.left - 6))\" y=\"\(format(position + 4))\" text-anchor=\"end\">\(escape(y.ticks.label(value, unit: y.unit)))</text>\n"
        }
        svg += "<line x1=\"\(format(margin.left))\" y1=\"\(format(margin.top))\" x2=\"\(format(margin.left))\" y2=\"\(format(bottom))\" stroke=\"#888\"/>\n"
        svg += "<line x1=\"\(format(margin.left))\" y1=\"\(format(bottom))\" x2=\"\(format(width - margin.right))\" y2=\"\(format(bottom))\" stroke=\"#888\"/>\n"
        if let x {
            for value in x.ticks.values {
                let position = xPosition(value, x.ticks.lower, x.ticks.upper)
                svg += "<line x1=\"\(format(position))\" y1=\"\(format(bottom))\" x2=\"\(format(position))\" y2=\"\(format(bottom + 4))\" stroke=\"#888\"/>\n"
                svg += "<text x=\"\(format(position))\" y=\"\(format(bottom + 16))\" text-anchor=\"middle\">\(escape(x.ticks.label(value, unit: x.unit)))</text>\n"
            }
        }
        return svg
    }

    private static func emptyChart(_ text: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(format(width))\" height=\"60\"><text x=\"10\" y=\"30\">\(escape(text))</text></svg>\n"
    }

    private static func xPosition(_ value: Double, _ low: Double, _ high: Double) -> Double {
        margin.left + (value - low) / (high - low) * (width - margin.left - margin.right)
    }

    private static func yPosition(_ value: Double, _ low: Double, _ high: Double) -> Double {
        height - margin.bottom - (value - low) / (high - low) * (height - margin.top - margin.bottom)
    }

    /// Numbers with up to `digits` decimals (none from 1000 up by default), trailing zeros dropped.
    static func format(_ value: Double, digits: Int? = nil) -> String {
        var text = SummaryLine.format(value, digits: digits ?? (abs(value) >= 1000 ? 0 : 2))
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text
    }

    static func escape(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
