import Testing
@testable import ParameterServer

/// The handshake's MACs: HMAC-SHA256 itself against RFC 4231, the documented construction against a
/// vector computed independently (Python's hmac), and verification's refusals.
struct HandshakeAuthenticationTests {
    private static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    private let token = AuthenticationToken("correct horse battery staple")
    private let serverNonce = Array(UInt8(0)..<32)
    private let clientNonce = Array(UInt8(32)..<64)
    private let sessionID = "1795923906-6015"

    @Test func hmacMatchesRFC4231() {
        // RFC 4231, test case 1: key 0x0b x 20, "Hi There".
        let case1 = HandshakeAuthentication.mac(token: AuthenticationToken(bytes: [UInt8](repeating: 0x0b, count: 20)), Array("Hi There".utf8))
        #expect(Self.hex(case1) == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        // Test case 2: a key shorter than the block, "Jefe".
        let case2 = HandshakeAuthentication.mac(token: AuthenticationToken("Jefe"), Array("what do ya want for nothing?".utf8))
        #expect(Self.hex(case2) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func macsFollowTheDocumentedConstruction() {
        // The worked example in Schemas/Messages/README.md.
        let response = HandshakeAuthentication.workerResponse(
            token: token, serverNonce: serverNonce, clientNonce: clientNonce, workerName: "worker-1")
        #expect(Self.hex(response) == "d78f91987d3b3cdcad6456fc326a1e3aae3fac20db85a854d80ee96d01cb781f")
        let proof = HandshakeAuthentication.serverProof(
            token: token, clientNonce: clientNonce, serverNonce: serverNonce, sessionID: sessionID)
        #expect(Self.hex(proof) == "00f7d1532e66340e86af1f5420947ccbb8287aff22f34e505a2829f5dfe31c07")
        // The labels keep a worker's response from passing as the server's proof.
        #expect(!HandshakeAuthentication.isValidServerProof(
            response, token: token, clientNonce: clientNonce, serverNonce: serverNonce, sessionID: "worker-1"))
    }

    @Test func verifyingAWorkerResponseAcceptsOnlyTheRightOne() {
        let mac = HandshakeAuthentication.workerResponse(token: token, serverNonce: serverNonce, clientNonce: clientNonce, workerName: "w")
        func valid(_ mac: [UInt8], token: AuthenticationToken? = nil, server: [UInt8]? = nil, client: [UInt8]? = nil, name: String = "w") -> Bool {
            HandshakeAuthentication.isValidWorkerResponse(
                mac, token: token ?? self.token, serverNonce: server ?? serverNonce, clientNonce: client ?? clientNonce, workerName: name)
        }
        #expect(valid(mac))
        for bit in [0, 7, 100, 255] {
            var flipped = mac
            flipped[bit / 8] ^= 1 << (bit % 8)
            #expect(!valid(flipped), "bit \(bit) flipped")
        }
        #expect(!valid(mac, token: AuthenticationToken("correct horse battery stapler")))
        #expect(!valid(mac, server: clientNonce, client: serverNonce), "nonces swapped")
        #expect(!valid(mac, name: "someone else"))
        #expect(!valid(Array(mac.dropLast())))
        #expect(!valid([]))
        #expect(!valid(mac, client: Array(clientNonce.dropLast())), "a short nonce is refused")
    }

    @Test func verifyingTheServerProofAcceptsOnlyTheRightOne() {
        let proof = HandshakeAuthentication.serverProof(token: token, clientNonce: clientNonce, serverNonce: serverNonce, sessionID: sessionID)
        #expect(HandshakeAuthentication.isValidServerProof(proof, token: token, clientNonce: clientNonce, serverNonce: serverNonce, sessionID: sessionID))
        var flipped = proof
        flipped[31] ^= 0x80
        #expect(!HandshakeAuthentication.isValidServerProof(flipped, token: token, clientNonce: clientNonce, serverNonce: serverNonce, sessionID: sessionID))
        #expect(!HandshakeAuthentication.isValidServerProof(proof, token: AuthenticationToken("x"), clientNonce: clientNonce, serverNonce: serverNonce, sessionID: sessionID))
        #expect(!HandshakeAuthentication.isValidServerProof(proof, token: token, clientNonce: serverNonce, serverNonce: clientNonce, sessionID: sessionID))
        #expect(!HandshakeAuthentication.isValidServerProof([], token: token, clientNonce: clientNonce, serverNonce: serverNonce, sessionID: sessionID))
    }

    /// Over TLS the MACs take the TLS labels and the channel's exporter value (vector from Python's hmac).
    @Test func macsOverTLSAreBoundToTheChannel() {
        let binding = Array(UInt8(64)..<96)
        let response = HandshakeAuthentication.workerResponse(
            token: token, serverNonce: serverNonce, clientNonce: clientNonce, workerName: "worker-1", channelBinding: binding)
        #expect(Self.hex(response) == "02910e567d4b233526623d067b95c2c1e668cf0696f741599380bda2ec4f3368")
        let proof = HandshakeAuthentication.serverProof(
            token: token, clientNonce: clientNonce, serverNonce: serverNonce, sessionID: sessionID, channelBinding: binding)
        #expect(Self.hex(proof) == "5c4dc5678160961a3c5000ab92c19d8e91a32adec3eef5499972097ff7a4519e")
        // The same token and nonces on another channel, or without one, do not verify: a relayed
        // handshake fails.
        var other = binding
        other[0] ^= 1
        for candidate in [other, nil] as [[UInt8]?] {
            #expect(!HandshakeAuthentication.isValidWorkerResponse(
                response, token: token, serverNonce: serverNonce, clientNonce: clientNonce, workerName: "worker-1", channelBinding: candidate))
            #expect(!HandshakeAuthentication.isValidServerProof(
                proof, token: token, clientNonce: clientNonce, serverNonce: serverNonce, sessionID: sessionID, channelBinding: candidate))
        }
        #expect(HandshakeAuthentication.isValidWorkerResponse(
            response, token: token, serverNonce: serverNonce, clientNonce: clientNonce, workerName: "worker-1", channelBinding: binding))
        // A binding of the wrong length is refused outright.
        #expect(!HandshakeAuthentication.isValidWorkerResponse(
            response, token: token, serverNonce: serverNonce, clientNonce: clientNonce, workerName: "worker-1", channelBinding: Array(binding.prefix(16))))
    }

    @Test func noncesAreFreshAndFullLength() {
        let nonces = (0..<8).map { _ in HandshakeAuthentication.makeNonce() }
        #expect(nonces.allSatisfy { $0.count == HandshakeAuthentication.nonceLength })
        #expect(Set(nonces.map(Self.hex)).count == nonces.count)
    }
}
