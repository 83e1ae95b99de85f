import Messages
import Reactor

/// The server's side of challenge-response authentication, used only when it has a token:
/// Hello → Challenge → ChallengeResponse → Welcome (with the server's proof). See
/// Schemas/Messages/README.md for the exact MACs.
extension ParameterServerRuntime {
    /// Asks a peer whose Hello was accepted to prove it holds the token.
    func challenge(_ peer: Peer, _ hello: Hello) {
        peer.hello = hello
        peer.serverNonce = HandshakeAuthentication.makeNonce()
        peer.state = .authenticating
        send(Envelope(body: .challenge(Challenge(serverNonce: peer.serverNonce))), to: peer) // counts bytes out for metrics
    }

    /// Asks a shard whose ShardHello was accepted to prove it holds the token, as a worker does, with
    /// its shard name in place of the worker name.
    func challenge(_ peer: Peer, _ hello: ShardHello) {
        peer.shardHello = hello
        peer.serverNonce = HandshakeAuthentication.makeNonce()
        peer.state = .authenticating
        send(Envelope(body: .challenge(Challenge(serverNonce: peer.serverNonce))), to: peer) // counts bytes out for metrics
    }

    /// Checks a peer's answer to its challenge; admits it (a worker) or enrols it (a shard), or refuses
    /// it and closes.
    func authenticate(_ peer: Peer, _ response: ChallengeResponse) {
        guard let token = configuration.token else { return }
        let name: String
        if let hello = peer.hello {
            name = hello.workerName
        } else if let hello = peer.shardHello {
            name = hello.shardName
        } else {
            return
        }
        guard response.clientNonce.count == HandshakeAuthentication.nonceLength else {
            refuseAuthentication(
                peer, reason: "client_nonce has \(response.clientNonce.count) bytes, not \(HandshakeAuthentication.nonceLength)",
                answer: "authentication failed: ChallengeResponse.client_nonce must be \(HandshakeAuthentication.nonceLength) bytes")
            return
        }
        guard HandshakeAuthentication.isValidWorkerResponse(
            response.mac, token: token, serverNonce: peer.serverNonce, clientNonce: response.clientNonce,
            workerName: name, channelBinding: peer.connection.channelBinding)
        else {
            // Over TLS a right token with a MAC for another channel (a relayed handshake) fails here too.
            let reason = peer.connection.isEncrypted ? "wrong token, or a MAC not bound to this TLS connection" : "wrong token"
            refuseAuthentication(peer, reason: reason, answer: "authentication failed: \(reason)")
            return
        }
        peer.clientNonce = response.clientNonce
        if let hello = peer.hello {
            peer.hello = nil
            admit(peer, hello)
        } else if let hello = peer.shardHello {
            peer.shardHello = nil
            enrollShard(peer, hello)
        }
    }

    /// The proof for the peer's Welcome: empty without a token (the unauthenticated handshake).
    func serverProof(for peer: Peer) -> [UInt8] {
        guard let token = configuration.token else { return [] }
        return HandshakeAuthentication.serverProof(
            token: token, clientNonce: peer.clientNonce, serverNonce: peer.serverNonce, sessionID: configuration.sessionID,
            channelBinding: peer.connection.channelBinding)
    }

    /// Refuses a peer that did not authenticate: logged with its address (its name is only a claim),
    /// answered with CODE_UNAUTHENTICATED unless `answer` is nil (the peer gave up itself), and closed.
    /// Nothing it sends afterwards is read.
    func refuseAuthentication(_ peer: Peer, reason: String, answer: String?) {
        reporter.line("refused \(peer.connection.remoteAddress): authentication failed (\(reason)); it called itself \"\(peer.name)\"")
        peer.state = .gone
        peer.hello = nil
        peer.shardHello = nil
        if let answer {
            peer.connection.sendError(.unauthenticated, answer, fatal: true)
        } else {
            peer.connection.close()
        }
    }
}
