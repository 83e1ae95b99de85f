import Messages
import Reactor

/// The worker's side of challenge-response authentication: it answers the server's Challenge with a
/// MAC of its token, and, when it has a token, trains only for a server whose Welcome proves it holds
/// the same one. See Schemas/Messages/README.md for the exact MACs.
extension WorkerRuntime {
    /// Answers the server's challenge, or gives up when this worker has no token.
    func answer(_ challenge: Challenge, in session: Session) {
        guard session.welcome == nil, !session.challenge.wasChallenged else {
            fail(session, .malformed, "the server sent a Challenge after the handshake's first one")
            return
        }
        do {
            let response = try session.challenge.respond(
                to: challenge, token: configuration.token, name: configuration.name, role: "worker",
                channelBinding: session.connection.channelBinding)
            session.connection.send(Envelope(body: .challengeResponse(response)))
        } catch {
            refuseToAuthenticate(session, error.message, report: error.report)
        }
    }

    /// Whether the Welcome may be trusted: always without a token; with one, only when the server
    /// challenged this worker and proves it holds the same one. Otherwise refuses the server.
    func serverIsAuthentic(_ welcome: Welcome, in session: Session) -> Bool {
        guard let token = configuration.token else { return true }
        do {
            try session.challenge.checkProof(
                welcome.serverProof, sessionID: welcome.sessionID, token: token, channelBinding: session.connection.channelBinding,
                role: "worker", what: "sent Welcome", refusing: "train for it",
                requirement: "this worker has a token and joins only a server that proves it holds it")
            return true
        } catch {
            refuseToAuthenticate(session, error.message, report: error.report)
            return false
        }
    }

    /// Ends a handshake that cannot authenticate: logs why, tells the server (CODE_UNAUTHENTICATED) and
    /// closes; the worker then exits rather than retry with the same token.
    private func refuseToAuthenticate(_ session: Session, _ message: String, report: String) {
        log("error: \(message)")
        session.authenticationFailed = true
        session.connection.sendError(.unauthenticated, report, fatal: true)
    }
}
