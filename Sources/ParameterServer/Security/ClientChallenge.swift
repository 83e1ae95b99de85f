import Messages

/// The client's side (a worker's or a shard's) of the challenge-response handshake on one connection:
/// its nonces, the answer to the server's `Challenge`, and the check of the server's proof. One place
/// for both clients, exactly as Schemas/Messages/README.md ("Authentication") specifies the MACs.
struct ClientChallenge {
    /// Why the handshake cannot go on: a line for the client's log, and the report for the server.
    struct Refusal: Error {
        let message: String
        let report: String
    }

    private(set) var serverNonce: [UInt8] = []
    private(set) var clientNonce: [UInt8] = []

    /// Whether the server has challenged this connection (and been answered).
    var wasChallenged: Bool { !clientNonce.isEmpty }

    /// The answer to `challenge`: the token's MAC over the nonces and `name`.
    /// - Parameter role: "worker" or "shard", for the refusals.
    /// - Throws: a `Refusal` when the client has no token or the nonce is not 32 bytes.
    mutating func respond(
        to challenge: Challenge, token: AuthenticationToken?, name: String, role: String, channelBinding: [UInt8]?
    ) throws(Refusal) -> ChallengeResponse {
        guard let token else {
            throw Refusal(message: "the server requires a token; pass --token-file or set \(AuthenticationToken.environmentVariable)",
                          report: "this \(role) has no token")
        }
        guard challenge.serverNonce.count == HandshakeAuthentication.nonceLength else {
            throw Refusal(
                message: "the server's challenge has a nonce of \(challenge.serverNonce.count) bytes, not \(HandshakeAuthentication.nonceLength)",
                report: "Challenge.server_nonce must be \(HandshakeAuthentication.nonceLength) bytes")
        }
        serverNonce = challenge.serverNonce
        clientNonce = HandshakeAuthentication.makeNonce()
        let mac = HandshakeAuthentication.workerResponse(
            token: token, serverNonce: serverNonce, clientNonce: clientNonce, workerName: name, channelBinding: channelBinding)
        return ChallengeResponse(clientNonce: clientNonce, mac: mac)
    }

    /// Checks that the server proved it holds `token` (`Welcome.server_proof`, `ShardAssignment.server_proof`).
    /// - Parameters:
    ///   - what: what the server sent, for the refusal: "sent Welcome", "assigned a range".
    ///   - refusing: what the client will not do for it: "train for it".
    ///   - requirement: the report when the server never challenged: what this client requires.
    /// - Throws: a `Refusal` when the server never challenged this connection or its proof is wrong.
    func checkProof(
        _ proof: [UInt8], sessionID: String, token: AuthenticationToken, channelBinding: [UInt8]?, role: String,
        what: String, refusing: String, requirement: String
    ) throws(Refusal) {
        guard wasChallenged else {
            throw Refusal(
                message: "the server \(what) without a challenge, so it cannot prove it holds this \(role)'s token "
                    + "(is ps-server running without one?); refusing to \(refusing)",
                report: requirement)
        }
        guard HandshakeAuthentication.isValidServerProof(
            proof, token: token, clientNonce: clientNonce, serverNonce: serverNonce, sessionID: sessionID, channelBinding: channelBinding)
        else {
            throw Refusal(message: "the server's proof is wrong: it does not hold this \(role)'s token; refusing to \(refusing)",
                          report: "authentication failed: the server's proof is wrong")
        }
    }
}
