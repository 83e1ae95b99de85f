import Foundation
import Learning
import Messages
import Reactor
import Testing
@testable import ParameterServer

/// A real `WorkerRuntime` in a sharded session, against a scripted server and two scripted shards in
/// this process: it joins every shard with its ticket, trains on the slices put end to end, pushes
/// each shard its slice, and tells the server only once both shards hold theirs.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ShardedWorkerTests {
    @Test func slicesGoToTheShardsAndTheStagedPushToTheServerOnlyOnceBothHoldThem() throws {
        let cluster = try ShardedCluster(mode: "async", shardVersions: [7, 5])
        defer { cluster.stop() }
        // Shard 1 keeps unit 1's acknowledgement until told: the worker must train and push unit 2
        // meanwhile, and must not tell the server of unit 1 before.
        cluster.holdAcknowledgement(at: 1, of: 1)
        try cluster.startWorker()

        let hello = try #require(cluster.wait("the worker's Hello") { $0.first { $0.peer == .server && $0.hello != nil } }?.hello)
        #expect(hello.capabilities?.encodings.contains(ShardMap.capability) == true)
        let joins = try #require(cluster.wait("both ShardJoins") { events in
            let joins = events.compactMap { event in event.shardJoin.map { (event.peer, $0) } }
            return joins.count == 2 ? joins : nil
        })
        let ticket = ShardTicket.make(key: cluster.ticketKey, sessionID: cluster.sessionID, worker: cluster.workerID)
        for (peer, join) in joins {
            #expect(join.ticket == ticket, "\(peer)")
            #expect(join.sessionID == cluster.sessionID && join.workerID == cluster.workerID && join.workerName == "sharded-worker")
            #expect(join.protocolVersion == ProtocolVersion.current)
        }
        #expect(cluster.worker.log { $0.contains("parameters on 2 shards (127.0.0.1:\(cluster.shardPorts[0]), 127.0.0.1:\(cluster.shardPorts[1]))") })

        cluster.sendUnits([Messages.WorkUnit(unitID: 1, indices: [0, 1]), Messages.WorkUnit(unitID: 2, indices: [2, 3])])
        // Shard 0 acknowledged unit 1 before unit 2 on one connection, so by the time unit 2's push
        // reaches the server the worker has seen shard 0's acknowledgement of unit 1 too.
        let first = try #require(cluster.wait("unit 2's staged push") { events in
            events.first { $0.peer == .server && $0.push != nil }?.push
        })
        #expect(first.unitID == 2, "unit 1 went to the server while shard 1 had not acknowledged its slice")
        cluster.releaseAcknowledgement()
        let pushes = try #require(cluster.wait("both staged pushes") { events in
            let pushes = events.filter { $0.peer == .server && $0.push != nil }
            return pushes.count == 2 ? pushes : nil
        })
        for event in pushes {
            let push = try #require(event.push)
            #expect(push.staged && push.values.isEmpty && push.encodedValues.isEmpty)
            #expect(push.baseVersion == 5, "the lowest of the slices' versions")
            #expect(event.acknowledgedBy == [0, 1], "unit \(push.unitID) reached the server before both shards acknowledged it")
        }
        #expect(pushes.compactMap(\.push?.unitID).sorted() == [1, 2])

        let slices = cluster.events.filter { $0.peer != .server && $0.push != nil }
        #expect(slices.count == 4)
        for slice in slices {
            let push = try #require(slice.push)
            let range = cluster.map.ranges[slice.peer.shardIndex!]
            #expect(push.values.count == range.count, "a slice of its range's length")
            #expect(push.baseVersion == cluster.initialVersions[range.index], "the version of that slice")
            #expect(!push.staged && push.loss == 0.5 && push.sampleCount == 2)
            // The update is weights + index: the slice holds its range of it.
            #expect(push.values == range.indices.map { ShardedCluster.weight($0) + Float($0) })
        }
        #expect(cluster.events.contains { $0.peer == .shard(0) && $0.pull == Pull(knownVersion: 0) })
        #expect(try cluster.onLoop { cluster.worker.runtime.unitsPushed } == 2)
    }

    @Test func aSyncUnitAboveTheSlicesVersionIsPulledWithMinVersion() throws {
        let cluster = try ShardedCluster(mode: "sync", shardVersions: [3, 3])
        defer { cluster.stop() }
        try cluster.startWorker()
        try #require(cluster.waitUntilJoined())
        cluster.sendUnits([Messages.WorkUnit(unitID: 9, indices: [4], minVersion: 4)])
        let pulls = try #require(cluster.wait("both pulls with min_version") { events in
            let pulls = events.filter { $0.pull?.minVersion == 4 }
            return pulls.count == 2 ? pulls : nil
        })
        #expect(pulls.allSatisfy { $0.pull == Pull(knownVersion: 3, minVersion: 4) })
        let push = try #require(cluster.wait("the staged push") { events in events.first { $0.peer == .server && $0.push != nil }?.push })
        #expect(push.unitID == 9 && push.baseVersion == 4 && push.staged)
    }

    @Test func anUpdateThatIsNotFiniteGoesToTheServerWholeInFP32() throws {
        let cluster = try ShardedCluster(mode: "async", shardVersions: [2, 2])
        defer { cluster.stop() }
        try cluster.startWorker()
        try #require(cluster.waitUntilJoined())
        cluster.sendUnits([Messages.WorkUnit(unitID: 4, indices: [UInt32(ShardedCluster.notFiniteSample)])])
        let push = try #require(cluster.wait("the push") { events in events.first { $0.peer == .server && $0.push != nil }?.push })
        #expect(!push.staged && push.values.count == cluster.map.parameterCount && push.loss.isNaN)
        #expect(!cluster.events.contains { $0.peer != .server && $0.push != nil }, "no slice goes to a shard")
    }

    @Test func aShardRefusingASliceKeepsItsUnitFromTheServer() throws {
        let cluster = try ShardedCluster(mode: "async", shardVersions: [2, 2])
        defer { cluster.stop() }
        cluster.refuseSlices(at: 1, of: [1])
        try cluster.startWorker()
        try #require(cluster.waitUntilJoined())
        cluster.sendUnits([Messages.WorkUnit(unitID: 1, indices: [0]), Messages.WorkUnit(unitID: 2, indices: [1])])
        let push = try #require(cluster.wait("unit 2's push") { events in events.first { $0.peer == .server && $0.push != nil }?.push })
        #expect(push.unitID == 2, "unit 1's slice was refused: its lease is left to expire")
        #expect(cluster.worker.log { $0.contains("unit 1 not pushed: shard 1 (127.0.0.1:\(cluster.shardPorts[1])) refused its slice") })
    }

    @Test func aShardThatClosesMakesTheWorkerJoinAgain() throws {
        let cluster = try ShardedCluster(mode: "async", shardVersions: [1, 1])
        defer { cluster.stop() }
        try cluster.startWorker()
        try #require(cluster.waitUntilJoined())
        cluster.closeShardConnections(of: 0)
        try #require(cluster.waitUntil("the server connection closing") { events in
            events.contains { $0.peer == .server && $0.closed && $0.connection == 1 }
        })
        let hellos = try #require(cluster.wait("a second Hello") { events in
            let hellos = events.filter { $0.peer == .server && $0.hello != nil }
            return hellos.count == 2 ? hellos : nil
        })
        #expect(hellos[1].connection == 2)
        #expect(cluster.worker.log { $0.contains("lost shard 0 (127.0.0.1:\(cluster.shardPorts[0]))") })
        // Joined again: both shards hear from the worker's new session.
        try #require(cluster.waitUntil("the second joins") { events in
            events.filter { $0.shardJoin != nil }.count == 4
        })
        #expect(cluster.events.contains { $0.peer == .shard(1) && $0.closed }, "the other shard's connection was closed too")
    }

    @Test func aMapThatDoesNotCoverTheModelIsRefused() throws {
        let cluster = try ShardedCluster(mode: "async", shardVersions: [1, 1])
        defer { cluster.stop() }
        cluster.shortenMap()
        try cluster.startWorker()
        let report = try #require(cluster.wait("the worker's refusal") { events in
            events.first { $0.peer == .server && $0.error != nil }?.error
        })
        #expect(report.code == .wrongShard && report.fatal)
        #expect(report.message.contains("covers 10 of the model's 11 parameters"), "\(report.message)")
        #expect(!cluster.events.contains { $0.peer != .server }, "no shard is dialled")
    }

    @Test func aShardSendingWhatOnlyTheServerSendsIsRefused() throws {
        let cluster = try ShardedCluster(mode: "async", shardVersions: [1, 1])
        defer { cluster.stop() }
        try cluster.startWorker()
        try #require(cluster.waitUntilJoined())
        cluster.sendFromShard(1, .workUnit(Messages.WorkUnit(unitID: 1, indices: [0])))
        let report = try #require(cluster.wait("the worker's refusal") { events in
            events.first { $0.peer == .shard(1) && $0.error != nil }?.error
        })
        #expect(report.code == .malformed && report.fatal)
        #expect(report.message.contains("shard 1") && report.message.contains("WorkUnit"), "\(report.message)")
        try #require(cluster.waitUntil("a second Hello") { events in
            events.filter { $0.peer == .server && $0.hello != nil }.count == 2
        })
    }
}

/// A model whose update is its weights plus each parameter's index, so every value tells where it
/// came from; a unit holding sample `ShardedCluster.notFiniteSample` has a NaN loss.
final class LabelledWorkerModel: WorkerModel {
    let layout: [TensorView]
    let trainSampleCount = 100

    init(parameterCount: Int) {
        layout = [TensorView(name: "w", shape: [parameterCount], offset: 0)]
    }

    func train(indices: [UInt32], weights: [Float], batchSize: Int, localSteps: Int, learningRate: Float,
               optimizer: LocalOptimizer) -> (kind: ModelUpdate.Kind, values: [Float], loss: Float) {
        let loss: Float = indices.contains(UInt32(ShardedCluster.notFiniteSample)) ? .nan : 0.5
        return (.gradient, weights.enumerated().map { $1 + Float($0) }, loss)
    }
}

/// A scripted sharded session on one event loop: a server that welcomes every Hello with a map of
/// two shards, the two shards serving their slices and acknowledging slices, and a real worker.
/// Everything the peers receive is recorded in order, on the loop's thread.
final class ShardedCluster: @unchecked Sendable {
    // Why @unchecked Sendable is safe: `recorded` is only touched holding `condition`; everything
    // else only on the loop's thread (or before the loop first runs it).

    enum Peer: Equatable, CustomStringConvertible {
        case server
        case shard(Int)

        var shardIndex: Int? {
            if case .shard(let index) = self { index } else { nil }
        }

        var description: String {
            switch self {
            case .server: "server"
            case .shard(let index): "shard \(index)"
            }
        }
    }

    /// One frame a peer received, or one of its connections closing.
    struct Event {
        var peer: Peer
        /// The peer's connections are numbered from 1 in the order they were accepted.
        var connection: Int
        var body: Envelope.Body?
        var closed = false
        /// For a push at the server: the shards that had acknowledged its unit's slice by then.
        var acknowledgedBy: [Int] = []

        var hello: Hello? { if case .hello(let value)? = body { value } else { nil } }
        var push: Push? { if case .push(let value)? = body { value } else { nil } }
        var pull: Pull? { if case .pull(let value)? = body { value } else { nil } }
        var shardJoin: ShardJoin? { if case .shardJoin(let value)? = body { value } else { nil } }
        var error: ErrorReport? { if case .error(let value)? = body { value } else { nil } }
    }

    static let parameterCount = 11
    static let notFiniteSample = 99

    /// The weights the shards serve: parameter i is `weight(i)`.
    static func weight(_ index: Int) -> Float { Float(index) / 100 }

    let loop: EventLoop
    let mode: String
    let sessionID = "sharded-worker-test"
    let workerID: UInt64 = 3
    let ticketKey = ShardTicket.makeKey()
    let map = ShardMap.balanced(parameterCount: ShardedCluster.parameterCount, shards: 2)
    let initialVersions: [UInt64]
    private(set) var serverPort = 0
    private(set) var shardPorts: [Int] = []
    private(set) var worker: Worker!

    // Loop thread only.
    private var listeners: [FrameListener] = []
    private var serverConnections: [FrameConnection] = []
    private var shardConnections: [[FrameConnection]] = [[], []]
    private var shardVersions: [UInt64]
    private var acknowledged: [UInt64: Set<Int>] = [:]
    private var holding: (shard: Int, unit: UInt64, connection: FrameConnection?)?
    private var refusing: (shard: Int, units: Set<UInt64>)?
    private var shortMap = false

    private let condition = NSCondition()
    private var recorded: [Event] = []

    init(mode: String, shardVersions: [UInt64]) throws {
        self.mode = mode
        self.shardVersions = shardVersions
        self.initialVersions = shardVersions
        loop = try EventLoop.startOnNewThread(name: "sharded-cluster")
        try onLoop { [self] in
            let server = try FrameListener(loop: loop, host: "127.0.0.1", port: 0) { [unowned self] connection in
                self.serverConnections.append(connection)
                self.serve(connection, number: self.serverConnections.count)
            }
            listeners.append(server)
            serverPort = server.localPort
            for index in 0..<2 {
                let shard = try FrameListener(loop: loop, host: "127.0.0.1", port: 0) { [unowned self] connection in
                    self.shardConnections[index].append(connection)
                    self.serveShard(index, connection, number: self.shardConnections[index].count)
                }
                listeners.append(shard)
                shardPorts.append(shard.localPort)
            }
        }
    }

    /// Starts the worker on the cluster's loop.
    func startWorker() throws {
        var configuration = WorkerConfiguration(host: "127.0.0.1", port: serverPort, retryInterval: .milliseconds(100), name: "sharded-worker")
        configuration.shardConnectTimeout = .seconds(5)
        worker = Worker(loop: loop, configuration: configuration)
        try onLoop { [self] in worker.runtime.start() }
    }

    /// Everything recorded so far.
    var events: [Event] {
        condition.lock()
        defer { condition.unlock() }
        return recorded
    }

    /// Waits (at most 30 s) until `match` finds something in the events.
    func wait<T>(_ what: String, _ match: ([Event]) -> T?) -> T? {
        let deadline = Date(timeIntervalSinceNow: 30)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let value = match(recorded) { return value }
            if !condition.wait(until: deadline) {
                Issue.record("timed out waiting for \(what); events: \(recorded.map { "\($0.peer)#\($0.connection): \($0.body.map { Envelope(body: $0).bodyName } ?? ($0.closed ? "closed" : "-"))" })")
                return match(recorded)
            }
        }
    }

    /// Waits (at most 30 s) until `predicate` holds of the events.
    func waitUntil(_ what: String, _ predicate: ([Event]) -> Bool) -> Bool {
        wait(what) { predicate($0) ? true : nil } ?? false
    }

    /// Waits until the worker has asked both shards for their slices: it is in the session.
    func waitUntilJoined() -> Bool {
        waitUntil("both first pulls") { events in events.filter { $0.pull != nil }.count == 2 }
    }

    /// Sends the worker's latest server connection these units.
    func sendUnits(_ units: [Messages.WorkUnit]) {
        loop.execute { [self] in
            for unit in units { serverConnections.last?.send(Envelope(body: .workUnit(unit))) }
        }
    }

    /// Makes `shard` keep its acknowledgement of `unit`'s slice until ``releaseAcknowledgement()``.
    func holdAcknowledgement(at shard: Int, of unit: UInt64) {
        loop.execute { [self] in holding = (shard, unit, nil) }
    }

    func releaseAcknowledgement() {
        loop.execute { [self] in
            guard let (shard, unit, connection) = holding, let connection else { return }
            holding = nil
            acknowledge(unit, shard: shard, on: connection)
        }
    }

    func refuseSlices(at shard: Int, of units: Set<UInt64>) {
        loop.execute { [self] in refusing = (shard, units) }
    }

    /// Makes the Welcome's last range one parameter short of the model.
    func shortenMap() {
        loop.execute { [self] in shortMap = true }
    }

    func closeShardConnections(of shard: Int) {
        loop.execute { [self] in shardConnections[shard].forEach { $0.close() } }
    }

    func sendFromShard(_ shard: Int, _ body: Envelope.Body) {
        loop.execute { [self] in shardConnections[shard].last?.send(Envelope(body: body)) }
    }

    func stop() {
        loop.stop()
        try? loop.join()
        withExtendedLifetime((listeners, serverConnections, shardConnections, worker)) {}
    }

    // MARK: Loop thread

    /// Runs `work` on the loop's thread and waits for its result.
    func onLoop<T>(_ work: @escaping () throws -> T) throws -> T {
        nonisolated(unsafe) let work = work
        nonisolated(unsafe) var result: Result<T, any Error>?
        let done = DispatchSemaphore(value: 0)
        loop.execute {
            result = Result { try work() }
            done.signal()
        }
        done.wait()
        return try result!.get()
    }

    private func record(_ event: Event) {
        condition.lock()
        recorded.append(event)
        condition.broadcast()
        condition.unlock()
    }

    private func serve(_ connection: FrameConnection, number: Int) {
        connection.onFrame = { [unowned self, unowned connection] payload in
            guard let body = (try? Envelope(serializedBytes: payload))?.body else { return }
            var event = Event(peer: .server, connection: number, body: body)
            if case .push(let push) = body { event.acknowledgedBy = acknowledged[push.unitID, default: []].sorted() }
            record(event)
            if case .hello = body { connection.send(Envelope(body: .welcome(welcome()))) }
        }
        connection.onClose = { [unowned self] _ in record(Event(peer: .server, connection: number, closed: true)) }
    }

    private func welcome() -> Welcome {
        let layout = LabelledWorkerModel(parameterCount: Self.parameterCount).layout
        var shards = map.ranges.map { range in
            ShardEndpoint(index: UInt32(range.index), host: "127.0.0.1", port: UInt32(shardPorts[range.index]),
                          offset: UInt64(range.offset), count: UInt64(range.count))
        }
        if shortMap { shards[shards.count - 1].count -= 1 }
        return Welcome(
            protocolVersion: ProtocolVersion.current, workerID: workerID, sessionID: sessionID, mode: mode,
            model: ModelSpec(configuration: ModelConfiguration(family: "labelled"), layout: layout), batchSize: 2, localSteps: 1,
            localLearningRate: 0.1, trainSamples: 100, heartbeatIntervalMs: 1000, shards: shards,
            shardTicket: ShardTicket.make(key: ticketKey, sessionID: sessionID, worker: workerID))
    }

    private func serveShard(_ index: Int, _ connection: FrameConnection, number: Int) {
        let range = map.ranges[index]
        connection.onFrame = { [unowned self, unowned connection] payload in
            guard let body = (try? Envelope(serializedBytes: payload))?.body else { return }
            record(Event(peer: .shard(index), connection: number, body: body))
            switch body {
            case .pull(let pull):
                // This shard reaches whatever version is asked of it at once.
                shardVersions[index] = max(shardVersions[index], pull.minVersion)
                let version = shardVersions[index]
                let weights = pull.knownVersion == version
                    ? Weights(version: version) : Weights(version: version, values: range.indices.map(Self.weight))
                connection.send(Envelope(body: .weights(weights)))
            case .push(let push):
                if let refusing, refusing.shard == index, refusing.units.contains(push.unitID) {
                    connection.send(Envelope(body: .error(ErrorReport(code: .notFinite, message: "refused for the test", fatal: false))))
                    return
                }
                if let holding, holding.shard == index, holding.unit == push.unitID {
                    self.holding?.connection = connection
                } else {
                    acknowledge(push.unitID, shard: index, on: connection)
                }
            default:
                break
            }
        }
        connection.onClose = { [unowned self] _ in record(Event(peer: .shard(index), connection: number, closed: true)) }
    }

    private func acknowledge(_ unit: UInt64, shard: Int, on connection: FrameConnection) {
        acknowledged[unit, default: []].insert(shard)
        connection.send(Envelope(body: .sliceReceived(SliceReceived(unitID: unit))))
    }

    /// The worker under test and what it logged.
    final class Worker: @unchecked Sendable {
        // Why @unchecked Sendable is safe: the runtime is only touched on the loop; `lines` holding `condition`.
        let runtime: WorkerRuntime
        private let lines: AwaitedLines

        init(loop: EventLoop, configuration: WorkerConfiguration) {
            let lines = AwaitedLines()
            self.lines = lines
            runtime = WorkerRuntime(configuration: configuration, loop: loop, log: { lines.append($0) }) { _ in
                LabelledWorkerModel(parameterCount: ShardedCluster.parameterCount)
            }
        }

        /// Waits (at most 30 s) for a logged line that satisfies `matches`.
        func log(_ matches: (String) -> Bool) -> Bool {
            lines.wait(for: matches)
        }
    }

}
