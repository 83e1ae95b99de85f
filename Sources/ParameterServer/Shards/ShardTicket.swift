import COpenSSL

/// What a worker shows a shard to prove the server admitted it (`Welcome.shard_ticket`,
/// `ShardJoin.ticket`): HMAC-SHA256(key, "downpour/v1 shard-ticket" || session_id || worker_id as 8
/// bytes little-endian), with a key the server makes fresh for each session and gives only its shards.
///
/// So a shard admits exactly the workers the server welcomed, without asking the server about each,
/// and a ticket is good for one worker of one session only.
public enum ShardTicket {
    /// The key's length in bytes.
    public static let keyLength = 32
    static let label = Array("downpour/v1 shard-ticket".utf8)

    /// A fresh key from the system's secure generator.
    public static func makeKey() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<keyLength).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// The ticket of `worker` in `sessionID`.
    public static func make(key: [UInt8], sessionID: String, worker: UInt64) -> [UInt8] {
        var message = label + Array(sessionID.utf8)
        withUnsafeBytes(of: worker.littleEndian) { message.append(contentsOf: $0) }
        return HandshakeAuthentication.mac(token: AuthenticationToken(bytes: key), message)
    }

    /// Whether `ticket` is `worker`'s in `sessionID`, compared in constant time.
    public static func isValid(_ ticket: [UInt8], key: [UInt8], sessionID: String, worker: UInt64) -> Bool {
        guard ticket.count == 32 else { return false }
        let expected = make(key: key, sessionID: sessionID, worker: worker)
        return CRYPTO_memcmp(ticket, expected, 32) == 0
    }
}
