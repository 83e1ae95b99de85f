import Messages
import Reactor
import TensorEncoding

/// A sharded session's connection to one shard, and what the worker holds of that shard's range: the
/// slice of the weights, as the shard's `Weights` frames make it.
///
/// - Warning: Loop thread only.
final class ShardLink {
    /// The shard's place in the map and the parameters it holds.
    let range: ShardMap.Range
    /// Where the worker dials it (`ShardEndpoint.host`, `port`).
    let host: String
    let port: Int
    /// Set once connected; frames sent before then are not sent (nothing is, before `ShardJoin`).
    var connection: FrameConnection?
    /// The slice of the weights, `range.count` values, and its version.
    var replica: WeightsReplica
    /// The encoding of this shard's slices (see `ShardMap.Range.encoding(wire:parameterCount:)`).
    let pushEncoding: TensorEncoding
    /// The highest `Pull.min_version` asked of the shard, so that a sync round's units ask once.
    var requestedMinVersion: UInt64 = 0
    /// The worker closed it (or gave up connecting): a close that follows is no loss.
    var closing = false

    init(range: ShardMap.Range, host: String, port: Int, replica: WeightsReplica, pushEncoding: TensorEncoding) {
        self.range = range
        self.host = host
        self.port = port
        self.replica = replica
        self.pushEncoding = pushEncoding
    }

    /// The shard's index in the map.
    var index: Int { range.index }

    /// `host:port`, for logs.
    var address: String { "\(host):\(port)" }

    /// `shard 1 (10.0.0.2:40001)`, for logs.
    var name: String { "shard \(index) (\(address))" }

    func send(_ body: Envelope.Body) {
        connection?.send(Envelope(body: body))
    }

    /// Asks for a slice newer than the one held (whole, with `whole`); with `minVersion`, once the
    /// shard's version reaches it.
    func pull(minVersion: UInt64 = 0, whole: Bool = false) {
        requestedMinVersion = max(requestedMinVersion, minVersion)
        send(.pull(Pull(knownVersion: whole ? 0 : replica.version, minVersion: minVersion)))
    }

    /// Closes at once: after the session is dropped, queued slices are of no use to the shard.
    func close() {
        guard !closing else { return }
        closing = true
        connection?.closeNow()
    }
}
