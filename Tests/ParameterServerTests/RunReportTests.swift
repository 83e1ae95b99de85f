import Testing
@testable import ParameterServer

@Suite struct RunReportTests {
    private func history() -> SessionHistory {
        var history = SessionHistory(title: "session <1>", configuration: [("mode", "async"), ("note", "a & b")])
        history.epochs = [
            .init(epoch: 0, seconds: 2.5, updates: 100, testAccuracy: 0.9512, testLoss: 0.2, trainLoss: 0.4, wireBytes: 1_200_000),
            .init(epoch: 1, seconds: 5.0, updates: 200, testAccuracy: 0.9734, testLoss: 0.1, trainLoss: 0.2, wireBytes: 2_400_000),
        ]
        history.evaluations = [.init(seconds: 1.5, updates: 60, wireBytes: 600_000, testAccuracy: 0.9, testLoss: 0.3)]
        // The workers' first pulls before any sample, then 625 bytes a sample.
        history.throughput = [
            .init(seconds: 1, updates: 0, wireBytes: 50_000, samples: 0),
            .init(seconds: 2, updates: 40, wireBytes: 850_000, samples: 1280),
            .init(seconds: 3, updates: 90, wireBytes: 1_850_000, samples: 2880),
        ]
        history.membership = [
            .init(seconds: 0.5, worker: "w<1>", joined: true, reason: ""),
            .init(seconds: 0.6, worker: "w2", joined: true, reason: ""),
            .init(seconds: 3.0, worker: "w<1>", joined: false, reason: "connection lost"),
        ]
        var staleness = StalenessStatistics()
        for value: UInt64 in [0, 1, 1, 3, 100] { staleness.record(value) }
        history.record(staleness: staleness)
        history.summary = ["mode": "async", "test_accuracy": "0.9734", "bytes_in": "1234567", "bytes_out": "615433",
                           "bytes_per_sample": "642"]
        history.duration = 5.5
        return history
    }

    @Test func everyChartIsAnInlineSVGWithTheRunsData() {
        let html = RunReport.html(history())
        #expect(html.components(separatedBy: "<svg").count - 1 == 8)
        #expect(html.contains("97.34"))       // the last accuracy point, in percent
        #expect(html.contains("50"))          // 40 -> 90 updates in one second
        #expect(html.contains("0.9734"))      // the summary table
        #expect(html.contains("left: connection lost"))
        #expect(!html.contains("<script"))
        #expect(!html.contains("src="))
    }

    /// The SVG of the figure captioned `caption`.
    private func chart(_ caption: String, in html: String) -> String {
        guard let start = html.range(of: "<figcaption>\(caption)</figcaption>"),
              let end = html.range(of: "</figure>", range: start.upperBound..<html.endIndex) else { return "" }
        return String(html[start.upperBound..<end.lowerBound])
    }

    /// The labels of the `text` elements in `svg` with `anchor`: "middle" for the x axis, "end" for the y axis.
    private func labels(_ svg: String, anchor: String) -> [String] {
        svg.components(separatedBy: "\n").compactMap { line in
            guard line.hasPrefix("<text"), line.contains("text-anchor=\"\(anchor)\""),
                  let open = line.firstIndex(of: ">"), let close = line.range(of: "</text>") else { return nil }
            return String(line[line.index(after: open)..<close.lowerBound])
        }
    }

    @Test func accuracyOverBytesHasEveryEvaluationOnAByteAxis() {
        let svg = chart("Test accuracy (%) over protocol bytes in and out", in: RunReport.html(history()))
        // The periodic evaluation and both epoch ends, in order of bytes.
        let circles = svg.components(separatedBy: "<title>").dropFirst().map { $0.prefix { $0 != "<" } }
        #expect(circles == ["600000, 90", "1200000, 95.12", "2400000, 97.34"])
        #expect(labels(svg, anchor: "middle") == ["0", "0.5 MB", "1 MB", "1.5 MB", "2 MB", "2.5 MB"])
        #expect(labels(svg, anchor: "end") == ["90", "92", "94", "96", "98"])
        // The periodic evaluation is on the accuracy charts over time and over updates too.
        let html = RunReport.html(history())
        #expect(chart("Test accuracy (%) over time (s)", in: html).contains("<title>1.5, 90</title>"))
        #expect(chart("Test accuracy (%) over updates", in: html).contains("<title>60, 90</title>"))
    }

    @Test func bytesPerSampleEachSecondAndSoFar() {
        let (interval, soFar) = RunReport.trafficPerSample(history().throughput)
        #expect(interval.map(\.0) == [2, 3] && interval.map(\.1) == [625, 625])
        #expect(soFar.map(\.0) == [2, 3])
        #expect(abs(soFar[0].1 - 850_000.0 / 1280) < 1e-9 && abs(soFar[1].1 - 1_850_000.0 / 2880) < 1e-9)
        let svg = chart("Protocol bytes per trained sample over time (s)", in: RunReport.html(history()))
        #expect(svg.contains("<title>2, 625</title>") && svg.contains("<title>2, 664.06</title>"))
        #expect(labels(svg, anchor: "end") == ["620 B", "630 B", "640 B", "650 B", "660 B", "670 B"])
        #expect(labels(svg, anchor: "middle") == ["0", "1", "2", "3"])
        // Points from a checkpoint written before bytes were counted carry none and are left out.
        var old = history().throughput
        for index in old.indices { (old[index].wireBytes, old[index].samples) = (0, 0) }
        old.append(.init(seconds: 4, updates: 120, wireBytes: 100_000, samples: 4000))
        old.append(.init(seconds: 5, updates: 150, wireBytes: 700_000, samples: 5000))
        let resumed = RunReport.trafficPerSample(old)
        #expect(resumed.interval.map(\.1) == [600] && resumed.soFar.map(\.1) == [25, 140])
    }

    @Test func everyAxisHasRoundTicks() {
        let html = RunReport.html(history())
        let updates = chart("Test accuracy (%) over updates", in: html)
        #expect(labels(updates, anchor: "middle") == ["0", "50", "100", "150", "200"])
        let time = chart("Loss over time (s)", in: html)
        #expect(labels(time, anchor: "middle") == ["0", "1", "2", "3", "4", "5"])
        #expect(labels(time, anchor: "end") == ["0.1", "0.2", "0.3", "0.4"])
        let staleness = chart("Staleness of applied updates", in: html)
        #expect(labels(staleness, anchor: "end") == ["0", "1", "2"])
        let timeline = chart("Each worker&#39;s time in the session (s)", in: html) + chart("Each worker's time in the session (s)", in: html)
        #expect(labels(timeline, anchor: "middle") == ["0", "2", "4", "6"])
    }

    @Test func theSummaryShowsTheTraffic() {
        let html = RunReport.html(history())
        #expect(html.contains("<tr><th>bytes_in</th><td>1234567 (1.23 MB)</td></tr>"))
        #expect(html.contains("<tr><th>bytes_out</th><td>615433 (615 KB)</td></tr>"))
        #expect(html.contains("<tr><th>bytes_per_sample</th><td>642</td></tr>"))
    }

    @Test func textFromPeersAndSettingsIsEscaped() {
        let html = RunReport.html(history())
        #expect(html.contains("w&lt;1&gt;"))
        #expect(!html.contains("w<1>"))
        #expect(html.contains("a &amp; b"))
        #expect(html.contains("session &lt;1&gt;"))
    }

    @Test func stalenessBucketsAreLabelledByRange() {
        let buckets = history().stalenessBuckets
        #expect(buckets.first?.label == "0" && buckets.first?.count == 1)
        #expect(buckets.first { $0.label == "1" }?.count == 2)
        #expect(buckets.last?.label == ">64" && buckets.last?.count == 1)
        #expect(buckets.first { $0.label == "5-6" } != nil)
    }

    /// Two ranges for three seconds; at 2.5 s shard-b is lost, and range 1 goes to shard-c, which counts
    /// from zero.
    private func shardedHistory() -> SessionHistory {
        var history = history()
        func point(_ seconds: Double, _ index: Int, _ shard: String, _ updates: UInt64, _ bytes: UInt64, _ staleness: Double)
            -> SessionHistory.ShardPoint {
            .init(seconds: seconds, index: index, shard: shard, updates: updates, bytesIn: bytes, bytesOut: bytes,
                  stalenessMean: staleness, stalenessMax: 3, workers: 2)
        }
        history.shards = [
            point(1, 0, "shard-a", 10, 100_000, 0.5), point(1, 1, "shard-b", 10, 100_000, 0.5),
            point(2, 0, "shard-a", 30, 300_000, 0.75), point(2, 1, "shard-b", 30, 300_000, 0.25),
            point(3, 0, "shard-a", 5, 50_000, 1), point(3, 1, "shard-c", 4, 40_000, 1),
            point(4, 0, "shard-a", 45, 450_000, 1.25), point(4, 1, "shard-c", 44, 440_000, 1.5),
        ]
        history.summary["shards"] = "2"
        history.summary["rollbacks"] = "1"
        history.summary["shard_bytes_per_sample"] = "1250"
        return history
    }

    @Test func aShardedSessionHasAShardsSection() throws {
        let html = RunReport.html(shardedHistory())
        #expect(html.contains("<h2>Shards</h2>"))
        #expect(html.components(separatedBy: "<svg").count - 1 == 11)
        // 20 updates a second on both ranges from 1 s to 2 s; the rollback's interval is left out (a
        // count went down), and 40 a second after it.
        let updates = chart("Updates applied per second on each shard over time (s)", in: html)
        let circles = updates.components(separatedBy: "<title>").dropFirst().map { $0.prefix { $0 != "<" } }
        #expect(circles == ["2, 20", "4, 40", "2, 20", "4, 40"])
        #expect(updates.contains(">shard 0</text>") && updates.contains(">shard 1</text>"))
        // In and out, 200 kB a second each way.
        let bytes = chart("Frame bytes in and out per second on each shard over time (s)", in: html)
        #expect(bytes.contains("<title>2, 400000</title>") && bytes.contains("<title>4, 800000</title>"))
        #expect(labels(bytes, anchor: "end").allSatisfy { $0.hasSuffix("B") })
        let staleness = chart("Mean staleness of each shard&#39;s applied slices since its assignment, over time (s)", in: html)
            + chart("Mean staleness of each shard's applied slices since its assignment, over time (s)", in: html)
        #expect(staleness.contains("<title>2, 0.25</title>") && staleness.contains("<title>4, 1.5</title>"))
        // Every holder of every range, one row each: the rollback restarts shard-a's stretch too.
        #expect(html.contains("<tr><td>1</td><td>shard-b</td><td>1</td><td>2</td><td>30</td>"))
        #expect(html.contains("<tr><td>1</td><td>shard-c</td><td>3</td><td>4</td><td>44</td>"))
        #expect(html.contains("<tr><td>0</td><td>shard-a</td><td>3</td><td>4</td><td>45</td>"))
        #expect(html.contains("<tr><th>shards</th><td>2</td></tr>"))
        #expect(html.contains("<tr><th>rollbacks</th><td>1</td></tr>"))
        #expect(html.contains("<tr><th>shard_bytes_per_sample</th><td>1250 (1.25 KB)</td></tr>"))
        let stretches = RunReport.shardStretches(shardedHistory().shards)
        #expect(stretches.map(\.shard) == ["shard-a", "shard-a", "shard-b", "shard-c"])
        #expect(stretches.map(\.points.count) == [2, 2, 2, 2])
    }

    @Test func aSessionWithoutShardsHasNoShardsSection() {
        let html = RunReport.html(history())
        #expect(!html.contains("Shards"))
        #expect(!html.contains("shard"))
    }

    @Test func aSessionWithoutDataStillRenders() {
        let html = RunReport.html(SessionHistory(title: "empty", configuration: []))
        #expect(html.contains("no data") && html.contains("no workers"))
    }
}
