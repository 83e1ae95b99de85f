import Messages
import Reactor

/// The worker's side of challenge-response authentication: it answers the server's Challenge with a
/// MAC of its token, and, when it has a token, trains only for a server whose Welcome proves it holds
/// the same one. See Schemas/Messages/README.md for the exact MACs.
extension WorkerRuntime {
    /// Answers the server's challenge, or gives up when this worker has no token.
    func answer(_ challenge: Challenge, in session: Session) {
        guard session.welcome == nil, session.serverNonce.isEmpty else {
            fail(session, .malformed, "the server sent a Challenge after the handshake's first one")
            return
        }
        guard let token = configuration.token else {
            refuseToAuthenticate(
                session, "the server requires a token; pass --token-file or set \(AuthenticationToken.environmentVariable)",
                report: "this worker has no token")
            return
        }
        guard challenge.serverNonce.count == HandshakeAuthentication.nonceLength else {
            refuseToAuthenticate(
                session, "the server's challenge has a nonce of \(challenge.serverNonce.count) bytes, not \(HandshakeAuthentication.nonceLength)",
                report: "Challenge.server_nonce must be \(HandshakeAuthentication.nonceLength) bytes")
            return
        }
        session.serverNonce = challenge.serverNonce
        session.clientNonce = HandshakeAuthentication.makeNonce()
        let mac = HandshakeAuthentication.workerResponse(
            token: token, serverNonce: session.serverNonce, clientNonce: session.clientNonce, workerName: configuration.name,
            channelBinding: session.connection.channelBinding)
        session.connection.send(Envelope(body: .challengeResponse(ChallengeResponse(clientNonce: session.clientNonce, mac: mac))))
    }

    /// Whether the Welcome may be trusted: always without a token; with one, only when the server
    /// challenged this worker and proves it holds the same token. Otherwise refuses the server.
    func serverIsAuthentic(_ welcome: Welcome, in session: Session) -> Bool {
        guard let token = configuration.token else { return true }
        guard !session.clientNonce.isEmpty else {
            refuseToAuthenticate(
                session, "the server sent Welcome without a challenge, so it cannot prove it holds this worker's token "
                    + "(is ps-server running without one?); refusing to train for it",
                report: "this worker has a token and joins only a server that proves it holds it")
            return false
        }
        guard HandshakeAuthentication.isValidServerProof(
            welcome.serverProof, token: token, clientNonce: session.clientNonce, serverNonce: session.serverNonce,
            sessionID: welcome.sessionID, channelBinding: session.connection.channelBinding)
        else {
            refuseToAuthenticate(
                session, "the server's proof is wrong: it does not hold this worker's token; refusing to train for it",
                report: "authentication failed: the server's proof is wrong")
            return false
        }
        return true
    }

    /// Ends a handshake that cannot authenticate: logs why, tells the server (CODE_UNAUTHENTICATED) and
    /// closes; the worker then exits rather than retry with the same token.
    private func refuseToAuthenticate(_ session: Session, _ message: String, report: String) {
        log("error: \(message)")
        session.authenticationFailed = true
        session.connection.sendError(.unauthenticated, report, fatal: true)
    }
}
