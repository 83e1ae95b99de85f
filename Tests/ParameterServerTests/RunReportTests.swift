import Testing
@testable import ParameterServer

@Suite struct RunReportTests {
    private func history() -> SessionHistory {
        var history = SessionHistory(title: "session <1>", configuration: [("mode", "async"), ("note", "a & b")])
        history.epochs = [
            .init(epoch: 0, seconds: 2.5, updates: 100, testAccuracy: 0.9512, testLoss: 0.2, trainLoss: 0.4),
            .init(epoch: 1, seconds: 5.0, updates: 200, testAccuracy: 0.9734, testLoss: 0.1, trainLoss: 0.2),
        ]
        history.throughput = [.init(seconds: 1, updates: 0), .init(seconds: 2, updates: 40), .init(seconds: 3, updates: 90)]
        history.membership = [
            .init(seconds: 0.5, worker: "w<1>", joined: true, reason: ""),
            .init(seconds: 0.6, worker: "w2", joined: true, reason: ""),
            .init(seconds: 3.0, worker: "w<1>", joined: false, reason: "connection lost"),
        ]
        var staleness = StalenessStatistics()
        for value: UInt64 in [0, 1, 1, 3, 100] { staleness.record(value) }
        history.record(staleness: staleness)
        history.summary = ["mode": "async", "test_accuracy": "0.9734"]
        history.duration = 5.5
        return history
    }

    @Test func everyChartIsAnInlineSVGWithTheRunsData() {
        let html = RunReport.html(history())
        #expect(html.components(separatedBy: "<svg").count - 1 == 6)
        #expect(html.contains("97.34"))       // the last accuracy point, in percent
        #expect(html.contains("50"))          // 40 -> 90 updates in one second
        #expect(html.contains("0.9734"))      // the summary table
        #expect(html.contains("left: connection lost"))
        #expect(!html.contains("<script"))
        #expect(!html.contains("src="))
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

    @Test func aSessionWithoutDataStillRenders() {
        let html = RunReport.html(SessionHistory(title: "empty", configuration: []))
        #expect(html.contains("no data") && html.contains("no workers"))
    }
}
