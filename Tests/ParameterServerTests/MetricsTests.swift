import Testing
@testable import ParameterServer

@Suite struct HTTPRequestParserTests {
    static let scrape = Array("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nUser-Agent: Prometheus/2.51\r\nAccept: */*\r\n\r\n".utf8)

    @Test func parsesAWholeRequest() {
        var parser = HTTPRequestParser()
        #expect(parser.feed(Self.scrape) == .request(HTTPRequestHead(method: "GET", target: "/metrics", minorVersion: 1)))
    }

    @Test func parsesTheSameRequestFedInTwoPiecesAtEverySplitPoint() {
        for split in 0...Self.scrape.count {
            var parser = HTTPRequestParser()
            let first = parser.feed(Self.scrape[..<split])
            if split < Self.scrape.count {
                #expect(first == .needMore, "split at \(split)")
            }
            let second = parser.feed(Self.scrape[split...])
            #expect(second == .request(HTTPRequestHead(method: "GET", target: "/metrics", minorVersion: 1)), "split at \(split)")
        }
    }

    @Test func parsesByteByByte() {
        var parser = HTTPRequestParser()
        var results: [HTTPRequestParser.Result] = []
        for byte in Self.scrape { results.append(parser.feed([byte])) }
        #expect(results.dropLast().allSatisfy { $0 == .needMore })
        #expect(results.last == .request(HTTPRequestHead(method: "GET", target: "/metrics", minorVersion: 1)))
    }

    @Test func acceptsBareLineFeedsHTTP10AndAQuery() {
        var parser = HTTPRequestParser()
        let head = HTTPRequestHead(method: "HEAD", target: "/metrics?x=1", minorVersion: 0)
        #expect(parser.feed(Array("HEAD /metrics?x=1 HTTP/1.0\n\n".utf8)) == .request(head))
        #expect(head.path == "/metrics")
    }

    @Test func keepsItsAnswerAndIgnoresWhatFollows() {
        var parser = HTTPRequestParser()
        let answer = parser.feed(Self.scrape + Array("garbage".utf8))
        #expect(parser.feed(Array("GET / HTTP/1.1\r\n\r\n".utf8)) == answer)
    }

    @Test(arguments: [
        "GET /metrics\r\n\r\n",                       // no version
        "GET  /metrics HTTP/1.1\r\n\r\n",             // two spaces
        "GET /met rics HTTP/1.1\r\n\r\n",             // space in the target
        "G(T /metrics HTTP/1.1\r\n\r\n",              // not a token
        "GET /metrics FTP/1.1\r\n\r\n",               // not HTTP
        "\r\n\r\n",                                   // no request line
        "GET /metrics HTTP/1.1\r\nNoColon\r\n\r\n",   // a header without a colon
        "GET /metrics HTTP/1.1\r\n: empty\r\n\r\n",   // a header without a name
        "GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n", // obsolete line folding
        "GET /m\u{7F}trics HTTP/1.1\r\n\r\n",         // a control character in the target
    ])
    func refusesMalformedRequests(request: String) {
        var parser = HTTPRequestParser()
        #expect(parser.feed(Array(request.utf8)) == .failure(.badRequest))
    }

    @Test func refusesOtherHTTPVersions() {
        var parser = HTTPRequestParser()
        #expect(parser.feed(Array("GET /metrics HTTP/2.0\r\n\r\n".utf8)) == .failure(.httpVersionNotSupported))
    }

    @Test func refusesAnOversizedHeadOnceItPassesTheBoundWithoutKeepingMore() {
        var parser = HTTPRequestParser(maxHeadBytes: 64)
        #expect(parser.feed(Array("GET /metrics HTTP/1.1\r\n".utf8)) == .needMore)
        #expect(parser.feed(Array("X-Padding: \(String(repeating: "a", count: 30))".utf8)) == .needMore)
        #expect(parser.feed(Array(repeating: UInt8(ascii: "a"), count: 1 << 20)) == .failure(.requestHeaderFieldsTooLarge))
    }

    @Test func refusesAHeadThatEndsPastTheBound() {
        var parser = HTTPRequestParser(maxHeadBytes: 30)
        #expect(parser.feed(Array("GET /metrics HTTP/1.1\r\nA: bcdef\r\n\r\n".utf8)) == .failure(.requestHeaderFieldsTooLarge))
        var exact = HTTPRequestParser(maxHeadBytes: 25)
        #expect(exact.feed(Array("GET /metrics HTTP/1.1\r\n\r\n".utf8)) == .request(HTTPRequestHead(method: "GET", target: "/metrics", minorVersion: 1)))
    }
}

@Suite struct MetricsResponseTests {
    static func head(_ method: String, _ target: String) -> HTTPRequestHead {
        HTTPRequestHead(method: method, target: target, minorVersion: 1)
    }

    @Test func servesMetricsOnlyAtTheirPathAndOnlyToGETAndHEAD() {
        var rendered = 0
        let render = { () -> [UInt8] in rendered += 1; return Array("x 1\n".utf8) }
        #expect(MetricsHTTPServer.respond(to: Self.head("GET", "/metrics"), render: render).status == .ok)
        #expect(MetricsHTTPServer.respond(to: Self.head("HEAD", "/metrics"), render: render).status == .ok)
        #expect(MetricsHTTPServer.respond(to: Self.head("GET", "/"), render: render).status == .notFound)
        #expect(MetricsHTTPServer.respond(to: Self.head("GET", "/metricsx"), render: render).status == .notFound)
        let post = MetricsHTTPServer.respond(to: Self.head("POST", "/metrics"), render: render)
        #expect(post.status == .methodNotAllowed)
        #expect(String(decoding: post.serialized(), as: UTF8.self).contains("Allow: GET, HEAD\r\n"))
        #expect(rendered == 2)
    }

    @Test func serializesWithLengthAndClose() {
        let response = HTTPResponse(status: .ok, contentType: MetricsHTTPServer.contentType, body: Array("a 1\n".utf8))
        #expect(String(decoding: response.serialized(), as: UTF8.self) ==
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 4\r\nConnection: close\r\n\r\na 1\n")
        #expect(String(decoding: response.serialized(includeBody: false), as: UTF8.self).hasSuffix("Connection: close\r\n\r\n"))
    }
}

@Suite struct SessionMetricsTests {
    /// The value of the sample line starting with `name ` (name including labels).
    static func value(_ name: String, in text: String) -> String? {
        text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.map { String($0.dropFirst(name.count + 1)) }
    }

    @Test func exposesTheSnapshotAndHookedFigures() {
        let metrics = SessionMetrics()
        var snapshot = MetricsSnapshot()
        let before = String(decoding: metrics.exposition(snapshot), as: UTF8.self)
        #expect(Self.value("downpour_updates_applied_total", in: before) == "0")
        #expect(Self.value(#"downpour_updates_rejected_total{reason="stale"}"#, in: before) == "0")
        // Not yet evaluated. swift-prometheus writes NaN as `nan`, which Prometheus parses (Go's ParseFloat).
        #expect(Self.value("downpour_test_accuracy", in: before)?.lowercased() == "nan")
        #expect(before.contains("# TYPE downpour_update_staleness histogram"))
        #expect(Self.value("downpour_checkpoint_age_seconds", in: before)?.lowercased() == "nan")

        snapshot.statistics.recordApplied(samples: 32, loss: 1, staleness: 0)
        snapshot.statistics.recordApplied(samples: 32, loss: 1, staleness: 5)
        snapshot.statistics.rejected["stale"] = 3
        snapshot.statistics.rejected["not_finite"] = 1
        snapshot.statistics.joins = 2
        snapshot.statistics.leaves = 1
        snapshot.activeWorkers = 1
        snapshot.modelVersion = 2
        snapshot.epochsCompleted = 1
        snapshot.lastEvaluation = (loss: 0.25, accuracy: 0.9)
        snapshot.trainingSeconds = 2
        snapshot.checkpointAgeSeconds = 1.5
        snapshot.checkpointsWritten = 3
        metrics.didReceive(bytes: 100)
        metrics.didSend(bytes: 40)
        metrics.didSend(bytes: 2)
        metrics.didApply(staleness: 0)
        metrics.didApply(staleness: 5)
        let text = String(decoding: metrics.exposition(snapshot), as: UTF8.self)
        #expect(Self.value("downpour_updates_applied_total", in: text) == "2")
        #expect(Self.value(#"downpour_updates_rejected_total{reason="stale"}"#, in: text) == "3")
        #expect(Self.value(#"downpour_updates_rejected_total{reason="not_finite"}"#, in: text) == "1")
        #expect(Self.value("downpour_worker_joins_total", in: text) == "2")
        #expect(Self.value("downpour_worker_leaves_total", in: text) == "1")
        #expect(Self.value("downpour_active_workers", in: text) == "1.0")
        #expect(Self.value("downpour_frame_bytes_received_total", in: text) == "100")
        #expect(Self.value("downpour_frame_bytes_sent_total", in: text) == "42")
        #expect(Self.value("downpour_frames_sent_total", in: text) == "2")
        #expect(Self.value("downpour_samples_trained_total", in: text) == "64")
        #expect(Self.value("downpour_samples_per_second", in: text) == "32.0")
        #expect(Self.value("downpour_test_accuracy", in: text) == "0.9")
        #expect(Self.value("downpour_test_loss", in: text) == "0.25")
        #expect(Self.value("downpour_checkpoint_age_seconds", in: text) == "1.5")
        #expect(Self.value("downpour_checkpoints_written_total", in: text) == "3")
        #expect(Self.value(#"downpour_update_staleness_bucket{le="0.0"}"#, in: text) == "1")
        #expect(Self.value(#"downpour_update_staleness_bucket{le="4.0"}"#, in: text) == "1")
        #expect(Self.value(#"downpour_update_staleness_bucket{le="6.0"}"#, in: text) == "2")
        #expect(Self.value(#"downpour_update_staleness_bucket{le="+Inf"}"#, in: text) == "2")
        #expect(Self.value("downpour_update_staleness_count", in: text) == "2")
        #expect(Self.value("downpour_update_staleness_sum", in: text) == "5.0")

        // A second scrape: counters hold their totals, the rate covers only the time between scrapes.
        snapshot.statistics.recordApplied(samples: 100, loss: nil, staleness: 1)
        snapshot.trainingSeconds = 4
        let again = String(decoding: metrics.exposition(snapshot), as: UTF8.self)
        #expect(Self.value("downpour_updates_applied_total", in: again) == "3")
        #expect(Self.value("downpour_samples_per_second", in: again) == "50.0")
    }

    @Test(arguments: [false, true])
    func everyLineIsACommentOrASample(sharded: Bool) {
        var snapshot = MetricsSnapshot()
        if sharded { snapshot.shards = [Self.point(index: 0, shard: "shard-a", updates: 1)] }
        let text = String(decoding: SessionMetrics().exposition(snapshot), as: UTF8.self)
        for line in text.split(separator: "\n") {
            #expect(line.hasPrefix("# HELP downpour_") || line.hasPrefix("# TYPE downpour_") || line.hasPrefix("downpour_"), "\(line)")
        }
        #expect(text.hasSuffix("\n"))
    }

    static func point(index: Int, shard: String, updates: UInt64, bytesIn: UInt64 = 0, bytesOut: UInt64 = 0,
                      stalenessMean: Double = 0, stalenessMax: UInt64 = 0, workers: Int = 0) -> SessionHistory.ShardPoint {
        SessionHistory.ShardPoint(seconds: 1, index: index, shard: shard, updates: updates, bytesIn: bytesIn, bytesOut: bytesOut,
                                  stalenessMean: stalenessMean, stalenessMax: stalenessMax, workers: workers)
    }

    @Test func aSessionWithoutShardsShowsNoShardMetrics() {
        let metrics = SessionMetrics()
        var snapshot = MetricsSnapshot()
        snapshot.statistics.recordApplied(samples: 32, loss: 1, staleness: 0)
        for _ in 0..<2 {
            let text = String(decoding: metrics.exposition(snapshot), as: UTF8.self)
            // (`wrong_shard` is a refusal reason of any session: a staged push to a server without shards.)
            #expect(!text.contains("downpour_shard_") && !text.contains("holder=") && !text.contains("rollbacks"), "\(text)")
        }
    }

    @Test func aShardedSessionShowsItsRollbacksBeforeAnyShardReports() {
        var snapshot = MetricsSnapshot()
        snapshot.sharded = true
        let text = String(decoding: SessionMetrics().exposition(snapshot), as: UTF8.self)
        #expect(Self.value("downpour_rollbacks_total", in: text) == "0", "\(text)")
        #expect(!text.contains("holder="))
    }

    @Test func shardedSessionsShowEachShardByRangeAndHolder() {
        let metrics = SessionMetrics()
        var snapshot = MetricsSnapshot()
        snapshot.shards = [
            Self.point(index: 0, shard: "shard-a", updates: 10, bytesIn: 1000, bytesOut: 2000, stalenessMean: 1.5, stalenessMax: 4, workers: 2),
            Self.point(index: 1, shard: "shard-b", updates: 9, bytesIn: 900, bytesOut: 1800, stalenessMean: 0.25, stalenessMax: 1, workers: 2),
        ]
        let text = String(decoding: metrics.exposition(snapshot), as: UTF8.self)
        let a = #"{shard="0",holder="shard-a"}"#, b = #"{shard="1",holder="shard-b"}"#
        #expect(Self.value("downpour_shard_updates_applied_total" + a, in: text) == "10")
        #expect(Self.value("downpour_shard_updates_applied_total" + b, in: text) == "9")
        #expect(Self.value("downpour_shard_frame_bytes_received_total" + a, in: text) == "1000")
        #expect(Self.value("downpour_shard_frame_bytes_sent_total" + b, in: text) == "1800")
        #expect(Self.value("downpour_shard_staleness_mean" + a, in: text) == "1.5")
        #expect(Self.value("downpour_shard_staleness_max" + a, in: text) == "4.0")
        #expect(Self.value("downpour_shard_workers" + b, in: text) == "2.0")
        #expect(Self.value("downpour_rollbacks_total", in: text) == "0")
        #expect(text.contains("# TYPE downpour_shard_updates_applied_total counter"))
        #expect(text.contains("# TYPE downpour_shard_staleness_mean gauge"))

        // Shard-b is lost: the session goes back to its snapshot, range 1 goes to shard-c, and every
        // holder counts from zero again.
        snapshot.rollbacks = 1
        snapshot.shards = [Self.point(index: 0, shard: "shard-a", updates: 3), Self.point(index: 1, shard: "shard-c", updates: 2)]
        let after = String(decoding: metrics.exposition(snapshot), as: UTF8.self)
        #expect(Self.value("downpour_rollbacks_total", in: after) == "1")
        #expect(Self.value("downpour_shard_updates_applied_total" + a, in: after) == "3")
        #expect(Self.value(#"downpour_shard_updates_applied_total{shard="1",holder="shard-c"}"#, in: after) == "2")
        #expect(!after.contains("shard-b"), "the lost holder's series stay:\n\(after)")

        // A range no shard holds for the moment has no series; the rollbacks stay.
        snapshot.shards = [Self.point(index: 0, shard: "shard-a", updates: 4)]
        let lost = String(decoding: metrics.exposition(snapshot), as: UTF8.self)
        #expect(!lost.contains(#"shard="1""#))
        #expect(Self.value("downpour_shard_updates_applied_total" + a, in: lost) == "4")
        #expect(Self.value("downpour_rollbacks_total", in: lost) == "1")
        snapshot.shards = []
        let none = String(decoding: metrics.exposition(snapshot), as: UTF8.self)
        #expect(Self.value("downpour_rollbacks_total", in: none) == "1")
        #expect(!none.contains("holder="))
    }
}
