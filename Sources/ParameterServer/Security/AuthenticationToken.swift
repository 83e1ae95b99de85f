import FoundationEssentials
import Glibc

/// The secret a server and its workers share, from which each proves to the other that it holds it
/// (see `HandshakeAuthentication`); the token itself never crosses the wire.
///
/// Its description and mirror are redacted, so interpolating or dumping one never prints the secret.
///
/// ```swift
/// let found = try AuthenticationToken.resolve(flag: nil, file: "/etc/downpour/token")
/// found?.warnings.forEach { print("WARNING: \($0)") }
/// configuration.token = found?.token
/// ```
public struct AuthenticationToken: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The environment variable a token is read from when no flag gives one.
    public static let environmentVariable = "DOWNPOUR_TOKEN"

    /// The help of every command's `--token` flag, which warns where the secret shows.
    public static let flagHelp = "The token itself. It shows up in ps to everyone on this machine: prefer --token-file or \(environmentVariable)."

    /// Tokens shorter than this draw a warning: anyone who sees one handshake can try guesses offline.
    public static let recommendedMinimumLength = 16

    /// The secret, as the HMAC key.
    let secret: [UInt8]

    /// A token from its text (its UTF-8 bytes are the key).
    /// - Precondition: `text` is not empty.
    public init(_ text: String) {
        self.init(bytes: Array(text.utf8))
    }

    /// A token from raw bytes.
    /// - Precondition: `bytes` is not empty.
    public init(bytes: [UInt8]) {
        precondition(!bytes.isEmpty, "an authentication token must not be empty")
        secret = bytes
    }

    public var description: String { "AuthenticationToken(redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [:]) }

    /// Where a token came from, for start-up messages (never the token itself).
    public enum Source: Sendable, Equatable, CustomStringConvertible {
        case flag
        case file(String)
        case environment

        public var description: String {
            switch self {
            case .flag: "--token"
            case .file(let path): "--token-file \(path)"
            case .environment: AuthenticationToken.environmentVariable
            }
        }
    }

    /// A token found by `resolve`, where it came from, and what the operator should be warned about.
    public struct Resolution: Sendable {
        public var token: AuthenticationToken
        public var source: Source
        /// Sentences to show as warnings (a token file others can read, a short token).
        public var warnings: [String]
    }

    /// Finds the token a command was given, if any. One place for ps-server, ps-worker and anything
    /// they start (ps-fleet's workers inherit `DOWNPOUR_TOKEN`).
    ///
    /// Precedence: `--token` over `--token-file` over the environment variable; giving both flags is an
    /// error, since one of them would be silently ignored.
    /// - Parameters:
    ///   - flag: the value of `--token`.
    ///   - file: the value of `--token-file`.
    ///   - environment: where `DOWNPOUR_TOKEN` is looked up; the process's environment by default.
    /// - Returns: nil when no source gives a token.
    /// - Throws: `TokenError` for both flags at once, an empty token, or a file that cannot be read.
    public static func resolve(
        flag: String?, file: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(TokenError) -> Resolution? {
        var resolution: Resolution
        switch (flag, file) {
        case (.some, .some):
            throw TokenError("give either --token or --token-file, not both")
        case (let text?, nil):
            guard !text.isEmpty else { throw TokenError("--token must not be empty") }
            resolution = Resolution(token: AuthenticationToken(text), source: .flag, warnings: [])
        case (nil, let path?):
            resolution = try read(file: path)
        case (nil, nil):
            guard let text = environment[environmentVariable] else { return nil }
            // Set but empty is a mistake (an unset variable in a script), not a request for no token.
            guard !text.isEmpty else { throw TokenError("\(environmentVariable) is set but empty") }
            resolution = Resolution(token: AuthenticationToken(text), source: .environment, warnings: [])
        }
        if resolution.token.secret.count < recommendedMinimumLength {
            resolution.warnings.append("the token (from \(resolution.source)) is shorter than \(recommendedMinimumLength) "
                + "bytes; anyone who sees a handshake can guess it offline. Make one with: "
                + "head -c 32 /dev/urandom | base64 > token && chmod 600 token")
        }
        return resolution
    }

    /// Token files longer than this are refused: a token is a line, not a document (or /dev/zero).
    public static let maximumFileBytes = 4096

    /// Reads a token file: its contents less any trailing line ends (as `echo secret > file` writes).
    /// - Returns: the token, with a warning when group or others may read the file (as ssh warns
    ///   about private keys).
    /// - Throws: `TokenError` when the file cannot be read, is too long, or holds nothing but line ends.
    public static func read(file path: String) throws(TokenError) -> Resolution {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw TokenError("--token-file \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        // The mode of the file actually opened, not of whatever the path names a moment later.
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw TokenError("--token-file \(path): \(String(cString: strerror(errno)))") }
        guard var bytes = readToEnd(descriptor, limit: maximumFileBytes + 1) else {
            throw TokenError("--token-file \(path): \(String(cString: strerror(errno)))")
        }
        guard bytes.count <= maximumFileBytes else {
            throw TokenError("--token-file \(path) is longer than \(maximumFileBytes) bytes; a token is one line")
        }
        while let last = bytes.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") {
            bytes.removeLast()
        }
        guard !bytes.isEmpty else { throw TokenError("--token-file \(path) is empty") }
        var warnings: [String] = []
        if status.st_mode & 0o077 != 0 {
            let mode = String(status.st_mode & 0o777, radix: 8)
            warnings.append("--token-file \(path) is accessible by group or others (mode \(mode)); chmod 600 \(path)")
        }
        return Resolution(token: AuthenticationToken(bytes: bytes), source: .file(path), warnings: warnings)
    }
}

/// A token that cannot be used, in words for the command line.
public struct TokenError: Error, Equatable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
