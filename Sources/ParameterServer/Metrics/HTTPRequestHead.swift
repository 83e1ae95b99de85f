/// The head of an HTTP/1.x request: its method, target and version. Headers are checked for shape
/// and skipped: the metrics endpoint needs none of them.
public struct HTTPRequestHead: Sendable, Equatable {
    /// The method, as sent (`GET`, `HEAD`, ...). Methods are case-sensitive.
    public var method: String
    /// The request target, as sent (`/metrics`, `/metrics?x=1`).
    public var target: String
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int

    /// The target without its query string.
    public var path: Substring { target.prefix { $0 != "?" } }
}

/// An incremental parser of one HTTP/1.x request head, bounded in size.
///
/// Feed it bytes as they arrive; it answers "need more", a request head, or an error with the status
/// to answer. A value type with no I/O, so every split point and malformed input can be tested without
/// sockets.
///
/// ```swift
/// var parser = HTTPRequestParser(maxHeadBytes: 8192)
/// switch parser.feed(bytes) {
/// case .needMore: break
/// case .request(let head): respond(to: head)
/// case .failure(let status): respond(status)
/// }
/// ```
public struct HTTPRequestParser: Sendable {
    /// What feeding bytes led to.
    public enum Result: Sendable, Equatable {
        /// The head is not complete yet.
        case needMore
        /// A complete, well-formed request head.
        case request(HTTPRequestHead)
        /// The request cannot be served; answer with this status and close.
        case failure(HTTPStatus)
    }

    /// The most bytes a request head (request line, headers and the blank line) may take.
    public let maxHeadBytes: Int
    private var buffer: [UInt8] = []
    private var result = Result.needMore

    /// Creates a parser.
    /// - Parameter maxHeadBytes: the bound on the request head; a longer one fails with 431.
    public init(maxHeadBytes: Int = 8192) {
        self.maxHeadBytes = maxHeadBytes
    }

    /// Consumes `bytes` and returns where the request stands. Once it has returned a request or a
    /// failure, it returns the same again and ignores further bytes (a body, or a pipelined request).
    public mutating func feed(_ bytes: some Collection<UInt8>) -> Result {
        guard result == .needMore else { return result }
        // Only the bytes that may still belong to the head are kept: never more than maxHeadBytes + 1.
        let searchFrom = max(0, buffer.count - 3)
        buffer.append(contentsOf: bytes.prefix(maxHeadBytes + 1 - buffer.count))
        guard let end = Self.headEnd(in: buffer, from: searchFrom) else {
            if buffer.count > maxHeadBytes { result = .failure(.requestHeaderFieldsTooLarge) }
            return result
        }
        guard end <= maxHeadBytes else {
            result = .failure(.requestHeaderFieldsTooLarge)
            return result
        }
        result = Self.parse(buffer[..<end])
        buffer = []
        return result
    }

    /// The index just past the first blank line (`\r\n\r\n`, or a bare `\n\n`), if there is one.
    private static func headEnd(in bytes: [UInt8], from start: Int) -> Int? {
        var index = start
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\n") {
                if index >= 1, bytes[index - 1] == UInt8(ascii: "\n") { return index + 1 }
                if index >= 3, bytes[index - 1] == UInt8(ascii: "\r"), bytes[index - 2] == UInt8(ascii: "\n") {
                    return index + 1
                }
            }
            index += 1
        }
        return nil
    }

    private static func parse(_ head: ArraySlice<UInt8>) -> Result {
        var lines = head.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
            line.last == UInt8(ascii: "\r") ? line.dropLast() : line
        }
        // Drop the blank line(s) that ended the head.
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let requestLine = lines.first else { return .failure(.badRequest) }
        let parts = requestLine.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty,
              parts[0].allSatisfy(isTokenCharacter), parts[1].allSatisfy(isTargetCharacter)
        else { return .failure(.badRequest) }
        let version = String(decoding: parts[2], as: UTF8.self)
        let minorVersion: Int
        switch version {
        case "HTTP/1.1": minorVersion = 1
        case "HTTP/1.0": minorVersion = 0
        default:
            return version.hasPrefix("HTTP/") ? .failure(.httpVersionNotSupported) : .failure(.badRequest)
        }
        for line in lines.dropFirst() {
            // A header is `name: value`, the name a token; obsolete line folding is refused (RFC 9112 5.2).
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
                  line[line.startIndex..<colon].allSatisfy(isTokenCharacter),
                  line[colon...].allSatisfy({ $0 != 0 })
            else { return .failure(.badRequest) }
        }
        return .request(HTTPRequestHead(
            method: String(decoding: parts[0], as: UTF8.self), target: String(decoding: parts[1], as: UTF8.self),
            minorVersion: minorVersion))
    }

    /// RFC 9110 `tchar`.
    private static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// Visible ASCII, as a request target must be.
    private static func isTargetCharacter(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7F
    }
}

/// The HTTP statuses the metrics endpoint answers with.
public enum HTTPStatus: Int, Sendable {
    case ok = 200
    case badRequest = 400
    case notFound = 404
    case methodNotAllowed = 405
    case requestTimeout = 408
    case requestHeaderFieldsTooLarge = 431
    case serviceUnavailable = 503
    case httpVersionNotSupported = 505

    /// The reason phrase.
    public var reason: String {
        switch self {
        case .ok: "OK"
        case .badRequest: "Bad Request"
        case .notFound: "Not Found"
        case .methodNotAllowed: "Method Not Allowed"
        case .requestTimeout: "Request Timeout"
        case .requestHeaderFieldsTooLarge: "Request Header Fields Too Large"
        case .serviceUnavailable: "Service Unavailable"
        case .httpVersionNotSupported: "HTTP Version Not Supported"
        }
    }
}

/// One HTTP/1.1 response, always with `Content-Length` and `Connection: close`.
public struct HTTPResponse: Sendable, Equatable {
    public var status: HTTPStatus
    public var contentType: String
    public var body: [UInt8]
    /// Extra headers, such as `Allow` for a 405.
    public var headers: [(String, String)]

    /// Creates a response.
    public init(status: HTTPStatus, contentType: String = "text/plain; charset=utf-8", body: [UInt8], headers: [(String, String)] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }

    /// A plain-text response whose body is the reason phrase.
    public init(status: HTTPStatus) {
        self.init(status: status, body: Array("\(status.rawValue) \(status.reason)\n".utf8))
    }

    /// The response as bytes on the wire; with `includeBody` false (a `HEAD`), the head only.
    public func serialized(includeBody: Bool = true) -> [UInt8] {
        var head = "HTTP/1.1 \(status.rawValue) \(status.reason)\r\n"
        head += "Content-Type: \(contentType)\r\n"
        head += "Content-Length: \(body.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "Connection: close\r\n\r\n"
        var bytes = Array(head.utf8)
        if includeBody { bytes += body }
        return bytes
    }

    public static func == (lhs: HTTPResponse, rhs: HTTPResponse) -> Bool {
        lhs.status == rhs.status && lhs.contentType == rhs.contentType && lhs.body == rhs.body
            && lhs.headers.map(\.0) == rhs.headers.map(\.0) && lhs.headers.map(\.1) == rhs.headers.map(\.1)
    }
}
