import Foundation
import Testing

/// A CA and certificates made at run time with the `openssl` command (no key is checked in): a server
/// certificate for localhost and 127.0.0.1, one for another name, an expired one, a worker's client
/// certificate, and a second CA that signed none of them.
struct TestCertificates {
    let directory: URL

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    var caCertificate: String { path("ca.pem") }
    var otherCA: String { path("other-ca.pem") }
    var serverCertificate: String { path("server.pem") }
    var serverKey: String { path("server.key") }
    var wrongNameCertificate: String { path("wrong-name.pem") }
    var wrongNameKey: String { path("wrong-name.key") }
    var expiredCertificate: String { path("expired.pem") }
    var expiredKey: String { path("expired.key") }
    var workerCertificate: String { path("worker.pem") }
    var workerKey: String { path("worker.key") }

    /// Makes them all in a fresh temporary directory; remove it with `remove()`.
    static func make() throws -> TestCertificates {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("downpour-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let script = """
            set -e
            cat > ca.cnf <<'CNF'
            [ ca ]
            default_ca = test
            [ test ]
            database = index.txt
            new_certs_dir = .
            serial = serial
            default_md = sha256
            policy = any
            copy_extensions = copy
            unique_subject = no
            [ any ]
            commonName = supplied
            CNF
            : > index.txt
            echo 01 > serial
            key() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" ${3:+-addext "$3"}; }
            sign() { openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in "$1.csr" -out "$1.pem" -notext "${@:2}"; }
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=Downpour test CA"
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other-ca.key -out other-ca.pem -days 2 -subj "/CN=Another CA"
            key server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1" && sign server -days 2
            key wrong-name elsewhere.example "subjectAltName=DNS:elsewhere.example" && sign wrong-name -days 2
            key expired localhost "subjectAltName=DNS:localhost,IP:127.0.0.1" && sign expired -startdate 20200101000000Z -enddate 20200102000000Z
            key worker worker-1 && sign worker -days 2
            chmod 600 *.key
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script]
        process.currentDirectoryURL = directory
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "openssl could not make the test certificates:\n\(text)")
        return TestCertificates(directory: directory)
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}
