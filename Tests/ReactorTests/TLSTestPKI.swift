import COpenSSL
import Reactor

#if canImport(Glibc)
import Glibc
#endif

/// A certificate authority and certificates made at run time with OpenSSL's C API, written as PEM to
/// a fresh temporary directory: no key is checked in, and nothing depends on the `openssl` program.
///
/// Keys are ECDSA P-256. Certificates are valid from an hour ago for a day unless asked otherwise.
final class TestPKI: Sendable {
    /// Paths of one certificate and its key.
    struct Identity: Sendable {
        let certificatePath: String
        let keyPath: String
    }

    let directory: String
    /// The CA certificate (PEM), to trust.
    let caPath: String
    /// A CA of its own, to trust instead: certificates of `self` are unknown to it.
    let otherCAPath: String
    /// For "localhost" and 127.0.0.1.
    let server: Identity
    /// For "localhost" and 127.0.0.1, expired a day ago.
    let expiredServer: Identity
    /// For "elsewhere.example" only.
    let wrongNameServer: Identity
    /// Signed by the other CA, for "localhost" and 127.0.0.1.
    let otherCAServer: Identity
    /// A client certificate, CN=worker-1, O=Downpour.
    let client: Identity
    /// A client certificate signed by the other CA.
    let otherCAClient: Identity

    /// The PKI every TLS test shares, made once.
    static let shared: TestPKI = TestPKI()

    private init() {
        var template = Array("/tmp/downpour-tls-XXXXXX".utf8CString)
        directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        let ca = Authority(name: "Downpour Test CA")
        let other = Authority(name: "Another CA")
        caPath = ca.write(to: directory + "/ca.pem")
        otherCAPath = other.write(to: directory + "/other-ca.pem")
        let localNames = "DNS:localhost,IP:127.0.0.1,IP:::1"
        server = ca.issue(commonName: "localhost", alternativeNames: localNames, to: directory + "/server")
        expiredServer = ca.issue(commonName: "localhost", alternativeNames: localNames, to: directory + "/expired",
                                 validFrom: -2 * 86_400, validUntil: -86_400)
        wrongNameServer = ca.issue(commonName: "elsewhere.example", alternativeNames: "DNS:elsewhere.example",
                                   to: directory + "/wrong-name")
        otherCAServer = other.issue(commonName: "localhost", alternativeNames: localNames, to: directory + "/other-server")
        client = ca.issue(commonName: "worker-1", alternativeNames: nil, to: directory + "/client", clientAuth: true)
        otherCAClient = other.issue(commonName: "intruder", alternativeNames: nil, to: directory + "/other-client",
                                    clientAuth: true)
        ca.free()
        other.free()
    }

    func serverContext(_ identity: Identity? = nil, clientCA: String? = nil,
                       handshakeTimeout: Duration = .seconds(10)) throws -> TLSContext {
        let identity = identity ?? server
        return try TLSContext.server(certificateChainPath: identity.certificatePath, privateKeyPath: identity.keyPath,
                                     clientCAPath: clientCA, handshakeTimeout: handshakeTimeout)
    }

    func clientContext(trusting caPath: String? = nil, identity: Identity? = nil) throws -> TLSContext {
        try TLSContext.client(trustedCAPath: caPath ?? self.caPath, certificatePath: identity?.certificatePath,
                              privateKeyPath: identity?.keyPath)
    }
}

/// A CA: a key and a self-signed certificate that signs others.
private struct Authority {
    let key: OpaquePointer
    let certificate: OpaquePointer
    private static let serials = SerialNumbers()

    init(name: String) {
        key = makeKey()
        certificate = makeCertificate(commonName: name, publicKey: key, issuer: nil, signingKey: key,
                                      serial: Self.serials.next(), validFrom: -3600, validUntil: 86_400,
                                      extensions: ["basicConstraints": "critical,CA:TRUE",
                                                   "keyUsage": "critical,keyCertSign,cRLSign",
                                                   "subjectKeyIdentifier": "hash"])
    }

    /// Frees the key and certificate: everything is on disk now.
    func free() {
        X509_free(certificate)
        EVP_PKEY_free(key)
    }

    func write(to path: String) -> String {
        writePEM(to: path) { PEM_write_bio_X509($0, certificate) }
        return path
    }

    func issue(commonName: String, alternativeNames: String?, to stem: String, clientAuth: Bool = false,
               validFrom: Int = -3600, validUntil: Int = 86_400) -> TestPKI.Identity {
        let leafKey = makeKey()
        var extensions = ["basicConstraints": "critical,CA:FALSE", "keyUsage": "critical,digitalSignature",
                          "extendedKeyUsage": clientAuth ? "clientAuth" : "serverAuth",
                          "authorityKeyIdentifier": "keyid:always"]
        if let alternativeNames { extensions["subjectAltName"] = alternativeNames }
        let leaf = makeCertificate(commonName: commonName, publicKey: leafKey, issuer: certificate, signingKey: key,
                                   serial: Self.serials.next(), validFrom: validFrom, validUntil: validUntil,
                                   extensions: extensions)
        defer {
            X509_free(leaf)
            EVP_PKEY_free(leafKey)
        }
        writePEM(to: stem + ".pem") { PEM_write_bio_X509($0, leaf) }
        writePEM(to: stem + ".key") { PEM_write_bio_PrivateKey($0, leafKey, nil, nil, 0, nil, nil) }
        return TestPKI.Identity(certificatePath: stem + ".pem", keyPath: stem + ".key")
    }
}

private final class SerialNumbers: @unchecked Sendable {
    // Safe: used only while `TestPKI.shared` is initialised, which Swift does once, on one thread.
    private var last = 0
    func next() -> Int {
        last += 1
        return last
    }
}

private func makeKey() -> OpaquePointer {
    let context = EVP_PKEY_CTX_new_from_name(nil, "EC", nil)!
    defer { EVP_PKEY_CTX_free(context) }
    var key: OpaquePointer?
    guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_CTX_set_group_name(context, "P-256") == 1,
          EVP_PKEY_generate(context, &key) == 1, let key else { fatalError("cannot make an EC key") }
    return key
}

/// A certificate for `commonName`, valid from `validFrom` to `validUntil` seconds from now.
private func makeCertificate(commonName: String, publicKey: OpaquePointer, issuer: OpaquePointer?,
                             signingKey: OpaquePointer, serial: Int, validFrom: Int, validUntil: Int,
                             extensions: [String: String]) -> OpaquePointer {
    let certificate = X509_new()!
    X509_set_version(certificate, 2)
    ASN1_INTEGER_set(X509_get_serialNumber(certificate), serial)
    X509_gmtime_adj(X509_getm_notBefore(certificate), validFrom)
    X509_gmtime_adj(X509_getm_notAfter(certificate), validUntil)
    X509_set_pubkey(certificate, publicKey)
    let name = X509_NAME_new()!
    defer { X509_NAME_free(name) }
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, commonName, -1, -1, 0)
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, "Downpour", -1, -1, 0)
    X509_set_subject_name(certificate, name)
    X509_set_issuer_name(certificate, issuer.map { X509_get_subject_name($0) } ?? name)
    var context = X509V3_CTX()
    X509V3_set_ctx(&context, issuer ?? certificate, certificate, nil, nil, 0)
    // Sorted, so that the subject key identifier exists before anything refers to it.
    for (field, value) in extensions.sorted(by: { $0.key > $1.key }) {
        guard let extensionValue = X509V3_EXT_conf(nil, &context, field, value) else {
            fatalError("cannot make the extension \(field)=\(value)")
        }
        X509_add_ext(certificate, extensionValue, -1)
        X509_EXTENSION_free(extensionValue)
    }
    guard X509_sign(certificate, signingKey, EVP_sha256()) > 0 else { fatalError("cannot sign a certificate") }
    return certificate
}

private func writePEM(to path: String, _ write: (OpaquePointer) -> Int32) {
    guard let file = BIO_new_file(path, "w") else { fatalError("cannot write \(path)") }
    defer { BIO_free(file) }
    guard write(file) == 1 else { fatalError("cannot write PEM to \(path)") }
}
