import Messages

/// A sharded worker's pushes between its slices and the server: which units wait for which shards'
/// `SliceReceived`, and when a unit's `Push{staged}` may go to the server.
///
/// A shard answers every slice `Push`, in the order the slices arrived, with `SliceReceived{unit_id}`
/// or a non-fatal `ErrorReport` (which names no unit: it is about the oldest slice not yet answered).
/// So each shard has a queue of the units whose slices it has not answered; a unit is ready once it
/// is in no queue. A refused slice drops its unit: its lease expires on the server, and the other
/// shards' answers for it are then taken off their queues and ignored.
///
/// ```swift
/// var staged = StagedPushes(shardCount: 2)
/// staged.stage(Push(unitID: 7, baseVersion: 3, staged: true))
/// staged.received(unitID: 7, from: 0)   // .waiting
/// staged.received(unitID: 7, from: 1)   // .ready(the staged push): send it to the server
/// ```
struct StagedPushes: Sendable {
    /// What one shard's `SliceReceived` did.
    enum Answer: Equatable, Sendable {
        /// Every shard now holds the unit's slice: send the server this push.
        case ready(Push)
        /// Other shards have yet to answer.
        case waiting
        /// The unit was dropped (another shard refused its slice); nothing to do.
        case dropped
        /// No slice of this unit awaits this shard's answer: the shard broke the protocol.
        case unexpected
    }

    /// The staged pushes for the server (no values), by unit.
    private var pushes: [UInt64: Push] = [:]
    /// Per shard, the units whose slices it has not answered yet, oldest first.
    private var unanswered: [[UInt64]]

    /// - Parameter shardCount: The shards every unit's slices go to.
    init(shardCount: Int) {
        unanswered = Array(repeating: [], count: shardCount)
    }

    /// The number of shards.
    var shardCount: Int { unanswered.count }

    /// Units whose push waits for at least one shard.
    var waitingCount: Int { pushes.count }

    /// Records that a slice of `push`'s unit went to every shard, and that `push` (with `staged` set
    /// and no values) goes to the server once every shard has it. Staging a unit again (its slices
    /// sent again) makes it wait for the new answers as well.
    mutating func stage(_ push: Push) {
        pushes[push.unitID] = push
        for shard in unanswered.indices { unanswered[shard].append(push.unitID) }
    }

    /// Takes `SliceReceived{unitID}` from `shard`.
    mutating func received(unitID: UInt64, from shard: Int) -> Answer {
        // Shards answer in order, so this is normally the head; a shard that answers a later slice
        // first still holds both, so take the one named rather than refuse the shard.
        guard let position = unanswered[shard].firstIndex(of: unitID) else { return .unexpected }
        unanswered[shard].remove(at: position)
        guard let push = pushes[unitID] else { return .dropped }
        if unanswered.contains(where: { $0.contains(unitID) }) { return .waiting }
        pushes[unitID] = nil
        return .ready(push)
    }

    /// Takes a non-fatal `ErrorReport` from `shard`: it refused its oldest unanswered slice.
    /// - Returns: The refused unit, now dropped; nil when no slice awaited that shard's answer.
    mutating func refused(by shard: Int) -> UInt64? {
        guard !unanswered[shard].isEmpty else { return nil }
        let unitID = unanswered[shard].removeFirst()
        pushes[unitID] = nil
        return unitID
    }

    /// The shards whose answer `unitID` waits for, in order; empty when it waits for none.
    func awaitedShards(of unitID: UInt64) -> [Int] {
        guard pushes[unitID] != nil else { return [] }
        return unanswered.indices.filter { unanswered[$0].contains(unitID) }
    }
}
