@testable import Reactor
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("TLS contexts: clear errors for what is wrong with the files")
struct TLSContextTests {
    let pki = TestPKI.shared

    private func serverError(certificate: String, key: String, clientCA: String? = nil) -> ReactorError? {
        do {
            _ = try TLSContext.server(certificateChainPath: certificate, privateKeyPath: key, clientCAPath: clientCA)
            return nil
        } catch {
            return error
        }
    }

    private func file(named name: String, holding text: String) -> String {
        let path = pki.directory + "/" + name
        let file = fopen(path, "w")!
        fputs(text, file)
        fclose(file)
        return path
    }

    @Test("valid files make contexts of each kind")
    func valid() throws {
        let server = try pki.serverContext()
        #expect(server.isServer && !server.requiresClientCertificate)
        #expect(try pki.serverContext(clientCA: pki.caPath).requiresClientCertificate)
        #expect(try !pki.clientContext().isServer)
        #expect(try !TLSContext.client(trustedCAPath: nil).isServer)  // the system's CAs
        _ = try pki.clientContext(identity: pki.client)
    }

    @Test("a missing certificate file is named, with the system's reason")
    func missingCertificate() {
        let error = serverError(certificate: pki.directory + "/nope.pem", key: pki.server.keyPath)
        #expect(error?.kind == .tls("No such file or directory"))
        #expect(error?.message == "cannot read the certificate chain at \(pki.directory)/nope.pem: No such file or directory")
    }

    @Test("a missing key file is named")
    func missingKey() {
        let error = serverError(certificate: pki.server.certificatePath, key: pki.directory + "/nope.key")
        #expect(error?.message == "cannot read the private key at \(pki.directory)/nope.key: No such file or directory")
    }

    @Test("a key that does not match the certificate")
    func mismatchedKey() {
        let error = serverError(certificate: pki.server.certificatePath, key: pki.client.keyPath)
        #expect(error?.kind == .tls("key values mismatch"))
        #expect(error?.message == "the private key at \(pki.client.keyPath) does not match the certificate at \(pki.server.certificatePath)")
    }

    @Test("a file that holds no PEM certificate")
    func notPEM() {
        let garbage = file(named: "garbage.pem", holding: "this is not a certificate\n")
        let error = serverError(certificate: garbage, key: pki.server.keyPath)
        #expect(error?.message.hasPrefix("cannot load the certificate chain at \(garbage): ") == true)
        let badKey = serverError(certificate: pki.server.certificatePath, key: garbage)
        #expect(badKey?.message.hasPrefix("cannot load the private key at \(garbage) (it must be PEM and unencrypted): ") == true)
    }

    @Test("an encrypted key fails to load rather than prompting for a passphrase")
    func encryptedKey() throws {
        // A PEM header that asks for a passphrase is enough for OpenSSL to want one.
        let encrypted = file(named: "encrypted.key", holding: """
            -----BEGIN ENCRYPTED PRIVATE KEY-----
            MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAgAAAAAAAAAAAICCAAw
            DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEAAAAAAAAAAAAAAAAAAAAAAEgZAA
            AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
            AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
            AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
            -----END ENCRYPTED PRIVATE KEY-----

            """)
        let error = serverError(certificate: pki.server.certificatePath, key: encrypted)
        #expect(error?.message.hasPrefix("cannot load the private key at \(encrypted)") == true)
    }

    @Test("a CA file that is missing or holds no certificate")
    func badCAFile() {
        let missing = serverError(certificate: pki.server.certificatePath, key: pki.server.keyPath,
                                  clientCA: pki.directory + "/no-ca.pem")
        #expect(missing?.message == "cannot read the client CA certificates at \(pki.directory)/no-ca.pem: No such file or directory")
        let garbage = file(named: "garbage-ca.pem", holding: "nothing here\n")
        do {
            _ = try TLSContext.client(trustedCAPath: garbage)
            Issue.record("a CA file without certificates was accepted")
        } catch {
            #expect(error.message.hasPrefix("cannot load the trusted CA certificates at \(garbage): ") == true)
        }
    }

    @Test("a client certificate without its key, or a key without its certificate")
    func halfAnIdentity() {
        #expect(throws: ReactorError.self) { try TLSContext.client(trustedCAPath: nil, certificatePath: pki.client.certificatePath) }
        #expect(throws: ReactorError.self) { try TLSContext.client(trustedCAPath: nil, privateKeyPath: pki.client.keyPath) }
    }

    @Test("a listener refuses a client context, and connect a server context")
    func wrongKind() async throws {
        let client = try pki.clientContext()
        let server = try pki.serverContext()
        try await withLoop { loop in
            let listenError = try await loop.submit { () -> ReactorError? in
                do {
                    _ = try FrameListener(loop: loop, host: "127.0.0.1", port: 0, tls: client) { _ in }
                    return nil
                } catch let error as ReactorError {
                    return error
                }
            }
            #expect(listenError?.kind == .invalidArgument)
            let connected = Promise<ReactorError?>()
            loop.execute {
                FrameConnection.connect(loop: loop, host: "127.0.0.1", port: 1, tls: server) { result in
                    if case .failure(let error) = result { connected.succeed(error) } else { connected.succeed(nil) }
                }
            }
            #expect(try await connected.get()?.kind == .invalidArgument)
        }
    }
}
