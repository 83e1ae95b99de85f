import Foundation
import Testing
@testable import ParameterServer

/// Where a token comes from, and the files and values that are refused or warned about.
struct AuthenticationTokenTests {
    /// Writes `contents` to a fresh file with `mode` and returns its path; the caller removes it.
    private func tokenFile(_ contents: String, mode: mode_t = 0o600) throws -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("downpour-token-\(UUID().uuidString)").path
        try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, mode)
        return path
    }

    private let long = "0123456789abcdef0123456789abcdef"

    @Test func aFileLosesItsTrailingLineEndsOnly() throws {
        let path = try tokenFile(" \(long) \r\n\n")
        defer { unlink(path) }
        let found = try AuthenticationToken.read(file: path)
        #expect(found.token.secret == Array(" \(long) ".utf8))
        #expect(found.source == .file(path))
        #expect(found.warnings.isEmpty)
    }

    @Test func anEmptyFileIsRefused() throws {
        for contents in ["", "\n", "\r\n\n"] {
            let path = try tokenFile(contents)
            defer { unlink(path) }
            #expect(throws: TokenError("--token-file \(path) is empty")) { try AuthenticationToken.read(file: path) }
        }
    }

    @Test func aMissingFileIsRefusedWithTheReason() throws {
        let path = "/nonexistent/downpour-token"
        let error = #expect(throws: TokenError.self) { try AuthenticationToken.read(file: path) }
        #expect(error?.description.contains(path) == true)
        #expect(error?.description.contains("No such file") == true, "\(String(describing: error))")
    }

    @Test func aFileOthersCanReadDrawsAWarning() throws {
        let path = try tokenFile(long, mode: 0o644)
        defer { unlink(path) }
        let found = try AuthenticationToken.read(file: path)
        #expect(found.warnings.count == 1)
        #expect(found.warnings.first?.contains("chmod 600") == true)
    }

    @Test func precedenceIsFlagThenFileThenEnvironment() throws {
        let path = try tokenFile(long)
        defer { unlink(path) }
        let environment = [AuthenticationToken.environmentVariable: "from-the-environment-0123456789"]
        let fromFlag = try #require(try AuthenticationToken.resolve(flag: "from-the-flag-0123456789", file: nil, environment: environment))
        #expect(fromFlag.source == .flag)
        #expect(fromFlag.token.secret == Array("from-the-flag-0123456789".utf8))
        let fromFile = try #require(try AuthenticationToken.resolve(flag: nil, file: path, environment: environment))
        #expect(fromFile.source == .file(path))
        let fromEnvironment = try #require(try AuthenticationToken.resolve(flag: nil, file: nil, environment: environment))
        #expect(fromEnvironment.source == .environment)
        #expect(fromEnvironment.token.secret == Array("from-the-environment-0123456789".utf8))
        #expect(try AuthenticationToken.resolve(flag: nil, file: nil, environment: [:]) == nil)
    }

    @Test func conflictingOrEmptySourcesAreRefused() throws {
        #expect(throws: TokenError("give either --token or --token-file, not both")) {
            try AuthenticationToken.resolve(flag: "a", file: "b", environment: [:])
        }
        #expect(throws: TokenError("--token must not be empty")) {
            try AuthenticationToken.resolve(flag: "", file: nil, environment: [:])
        }
        #expect(throws: TokenError("DOWNPOUR_TOKEN is set but empty")) {
            try AuthenticationToken.resolve(flag: nil, file: nil, environment: ["DOWNPOUR_TOKEN": ""])
        }
    }

    @Test func aShortTokenDrawsAWarning() throws {
        let found = try #require(try AuthenticationToken.resolve(flag: "short", file: nil, environment: [:]))
        #expect(found.warnings.contains { $0.contains("shorter than 16 bytes") })
    }

    @Test func theSecretIsNeverPrinted() {
        let token = AuthenticationToken("hunter2-hunter2-hunter2")
        var dumped = ""
        dump(token, to: &dumped)
        for text in ["\(token)", String(reflecting: token), dumped] {
            #expect(!text.contains("hunter2"), "\(text)")
        }
    }
}
