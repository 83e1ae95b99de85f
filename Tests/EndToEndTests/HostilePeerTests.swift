import Foundation
import Messages
import Testing

/// Hostile peers against a session in progress (issues #6 and #11): a slow-loris handshake, 2,000
/// connections at once, 1,024 strangers with partial frames, and a frame announcing 4 GiB. The server refuses each, logs it with the peer's address,
/// gives back what it took, and the two honest workers still train every unit.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct HostilePeerTests {
    /// Runs `attack` while two slowed-down workers train, then checks that the session completed.
    ///
    /// The workers wait 50 ms per unit, so each of the 4 epochs (94 units) takes over 2 s: the attack
    /// lands while training is under way (checked: no summary line before it is over).
    private func duringTraining(_ serverFlags: [String], attack: (_ server: RunningProcess, _ port: Int) throws -> Void) throws {
        let (server, port) = try startServer(smallSession + ["--workers", "2", "--epochs", "4"] + serverFlags)
        defer { server.end() }
        let workers = try (1...2).map { try startWorker(port: port, name: "steady-\($0)", ["--once", "--inject", "delay=50ms"]) }
        defer { workers.forEach { $0.end() } }
        try server.waitForLine(containing: "training started", timeout: .seconds(120))

        try attack(server, port)
        #expect(!server.output.contains { $0.hasPrefix("mode=") }, "the session ended before the attack was over; it proved nothing")

        let fields = try summary(of: server)
        #expect(fields.int("units") == fields.int("units_expected"))
        #expect(fields.int("joins") == 2, "a hostile connection must never join")
        for worker in workers {
            #expect(try worker.waitForExit(timeout: .seconds(60)) == 0)
            #expect(worker.output.contains { $0.contains("session over: test accuracy") })
        }
    }

    @Test func slowLorisConnectionsAreClosedAfterTheHandshakeTimeout() throws {
        try duringTraining(["--handshake-timeout", "1"]) { server, port in
            // One says nothing at all; the other dribbles a frame a byte at a time, so it is never idle.
            let silent = try HostileSocket(port: port)
            let dribbler = try HostileSocket(port: port)
            let opened = ContinuousClock.now
            let frame: [UInt8] = [200, 0, 0, 0] + [UInt8](repeating: 0x0A, count: 200)
            var closed = false
            for byte in frame where !closed {
                // Awaiting the close is the pause between bytes: 4 bytes a second.
                closed = !dribbler.send([byte]) || dribbler.waitForClose(timeout: .milliseconds(250))
                if ContinuousClock.now - opened > .seconds(15) { break }
            }
            let dribblerLasted = ContinuousClock.now - opened
            #expect(closed, "a connection dribbling a partial frame was still open after \(dribblerLasted)")
            // A timer of its own per connection: closed after 1 s (and slack for a busy machine).
            #expect(dribblerLasted >= .milliseconds(900) && dribblerLasted < .seconds(10), "closed after \(dribblerLasted)")
            #expect(silent.waitForClose(timeout: .seconds(10)), "a silent connection was still open")

            for peer in [silent, dribbler] {
                try server.waitForLine(containing: "closing 127.0.0.1:\(peer.localPort): no handshake within 1", timeout: .seconds(10))
            }
        }
    }

    @Test func twoThousandConnectionsAtOnceAreRefusedPastTheLimitAndAllGiveBack() throws {
        let connections = 2000
        let limit = 1024 // ps-server's default --max-connections
        try #require(ProcessResources.raiseOwnOpenFileLimit() >= connections + 256, "this test needs \(connections) sockets")
        // A long handshake timeout, so that no accepted connection times out (freeing a slot) mid-attack
        // and exactly the excess is refused: the two workers and 1,022 silent peers fill the 1,024 slots.
        try duringTraining(["--handshake-timeout", "60"]) { server, port in
            // ps-server raised its own soft limit, so that 1,024 connections are reachable.
            let limits = try #require(ProcessResources.openFileLimits(of: server.pid))
            #expect(limits.soft == limits.hard, "ps-server left its open-file limit at \(limits.soft) of \(limits.hard)")
            let baseline = try ProcessResources.openDescriptors(of: server.pid)

            var sockets = try (0..<connections).map { _ in try HostileSocket(port: port, blocking: false) }
            try HostileSocket.waitUntilConnected(sockets, timeout: .seconds(60))
            let excess = connections - (limit - 2)
            try server.waitForLines(containing: "at the connection limit (\(limit))", count: excess, timeout: .seconds(60))

            // Each refused connection is told why, then closed; the accepted ones hear nothing.
            let told = HostileSocket.firstEnvelopes(from: sockets, count: excess, timeout: .seconds(30)).filter { envelope in
                let report = envelope.body?.errorReport
                return report?.code == .unavailable && report?.fatal == true && report?.message.contains("connection limit") == true
            }.count
            #expect(told == excess, "\(told) of \(excess) refused connections got an error frame")
            #expect(try ProcessResources.openDescriptors(of: server.pid) > baseline + limit / 2, "the accepted connections should be open")

            // Hanging up makes the server close the accepted ones too: its descriptors return to the baseline.
            sockets.removeAll()
            var now = 0
            let returned = try eventually(within: .seconds(30)) {
                now = try ProcessResources.openDescriptors(of: server.pid)
                return now <= baseline + 2
            }
            #expect(returned, "ps-server holds \(now) descriptors, \(baseline) before the attack")
        }
    }

    @Test func a1024StrangersPartialFramesStayWithinTheirBudget() throws {
        let connections = 1024
        try #require(ProcessResources.raiseOwnOpenFileLimit() >= connections + 256, "this test needs \(connections) sockets")
        // Room for all of them beside the workers, and no handshake timeout during the attack.
        try duringTraining(["--max-connections", "1100", "--handshake-timeout", "60"]) { server, port in
            let rssBefore = try #require(ProcessResources.status("VmRSS", of: server.pid))
            // Each announces a 64,000-byte frame (under the 64 KiB a stranger may send) and sends all but
            // the last 100 bytes: 62 MiB if the server held them all. The strangers' budget is 16 MiB.
            let announced = 64_000
            let frame = withUnsafeBytes(of: UInt32(announced).littleEndian) { Array($0) } + [UInt8](repeating: 0x0A, count: announced - 100)
            var sockets = try (0..<connections).map { _ in try HostileSocket(port: port, blocking: false) }
            try HostileSocket.waitUntilConnected(sockets, timeout: .seconds(60))
            for socket in sockets { _ = socket.send(frame) }
            let fitting = (16 << 20) / announced
            let refused = connections - fitting
            try server.waitForLines(containing: "frame buffer budget", count: refused, timeout: .seconds(60))
            // The debug build's own footprint varies with training; what the attack may add is the budget.
            let peak = try #require(ProcessResources.status("VmHWM", of: server.pid))
            #expect(peak - rssBefore < 40 << 20, "peak RSS \(peak >> 20) MiB, \(rssBefore >> 20) MiB before the attack")
            // The refused ones were told why before the close.
            let told = HostileSocket.firstEnvelopes(from: sockets, count: refused, timeout: .seconds(30)).filter {
                $0.body?.errorReport?.code == .frameTooLarge && $0.body?.errorReport?.fatal == true
            }.count
            #expect(told >= refused * 9 / 10, "\(told) of \(refused) refused strangers got CODE_FRAME_TOO_LARGE")

            // A stranger announcing 48 MiB is refused at once, whatever the budget has left.
            let large = try HostileSocket(port: port)
            #expect(large.send(withUnsafeBytes(of: UInt32(48 << 20).littleEndian) { Array($0) }))
            #expect(large.waitForClose(timeout: .seconds(10)))
            try server.waitForLine(containing: "127.0.0.1:\(large.localPort) closed before its handshake", timeout: .seconds(10))
            sockets.removeAll()
        }
    }

    @Test func aFrameAnnouncingFourGiBIsRefusedBeforeAnythingIsAllocated() throws {
        try duringTraining([]) { server, port in
            let rssBefore = try #require(ProcessResources.status("VmRSS", of: server.pid))
            let peakBefore = try #require(ProcessResources.status("VmPeak", of: server.pid))
            // Several, so that an allocation per attempt would show even if each were freed at once.
            for _ in 1...8 {
                let peer = try HostileSocket(port: port)
                #expect(peer.send([0xFF, 0xFF, 0xFF, 0xFF]))
                #expect(peer.waitForClose(timeout: .seconds(10)), "a 4 GiB length prefix left the connection open")
                let logged = try server.waitForLine(containing: "connection from 127.0.0.1:\(peer.localPort) closed before its handshake", timeout: .seconds(10))
                #expect(logged.contains("4294967295"), "the log line should name the announced length: \(logged)")
            }
            let rssAfter = try #require(ProcessResources.status("VmRSS", of: server.pid))
            let peakAfter = try #require(ProcessResources.status("VmPeak", of: server.pid))
            // Training moves some memory about; a 4 GiB buffer, even untouched, would map 4 GiB.
            #expect(rssAfter - rssBefore < 64 << 20, "RSS grew from \(rssBefore) to \(rssAfter) bytes")
            #expect(peakAfter - peakBefore < 1 << 30, "peak address space grew from \(peakBefore) to \(peakAfter) bytes")
        }
    }
}
