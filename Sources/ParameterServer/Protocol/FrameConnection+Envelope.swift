import Messages
import Reactor
import WireCodec

extension FrameConnection {
    /// Encodes `envelope` straight into the connection's outgoing buffer: size first, then one write,
    /// with no intermediate array (weights and updates are hundreds of kilobytes).
    ///
    /// - Warning: Loop thread only.
    func send(_ envelope: Envelope) {
        sendFrame(payloadSize: envelope.serializedSize()) { buffer in
            envelope.serialize(into: buffer)
        }
    }

    /// Sends an error report; when `fatal`, closes the connection once it is written, or after
    /// `fatalLinger` at most: a peer that does not read cannot keep a refused connection open.
    ///
    /// - Warning: Loop thread only.
    func sendError(_ code: ErrorReport.Code, _ message: String, fatal: Bool) {
        send(Envelope(body: .error(ErrorReport(code: code, message: message, fatal: fatal))))
        if fatal { close(lingeringAtMost: Self.fatalLinger) }
    }

    /// How long a connection refused with a fatal error may take to flush before it is cut.
    static let fatalLinger: Duration = .seconds(5)
}

extension Envelope {
    /// The name of the body's message, for logs and errors.
    var bodyName: String {
        switch body {
        case .hello?: "Hello"
        case .welcome?: "Welcome"
        case .pull?: "Pull"
        case .weights?: "Weights"
        case .workUnit?: "WorkUnit"
        case .push?: "Push"
        case .pushAck?: "PushAck"
        case .heartbeat?: "Heartbeat"
        case .leave?: "Leave"
        case .sessionEnd?: "SessionEnd"
        case .error?: "ErrorReport"
        case .challenge?: "Challenge"
        case .challengeResponse?: "ChallengeResponse"
        case .shardHello?: "ShardHello"
        case .shardAssignment?: "ShardAssignment"
        case .shardApply?: "ShardApply"
        case .shardDiscard?: "ShardDiscard"
        case .shardStateRequest?: "ShardStateRequest"
        case .shardState?: "ShardState"
        case .shardJoin?: "ShardJoin"
        case .sliceReceived?: "SliceReceived"
        case nil: "an empty envelope"
        }
    }
}
