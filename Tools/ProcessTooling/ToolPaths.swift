import Foundation

/// Where an operator's tool (`ps-fleet`, `ps-soak`) finds the executables it starts and puts its logs.
public enum ToolPaths {
    /// The executable `name` in the directory of this process's own executable: the package's products
    /// are built side by side, so a tool finds the others it runs without a search path.
    /// - Parameter flag: The option that names it instead, for the error message (`--worker-binary`).
    /// - Throws: ``StartupError`` when there is no such executable.
    public static func sibling(_ name: String, flag: String) throws(StartupError) -> String {
        let own = Bundle.main.executableURL
        let beside = own?.deletingLastPathComponent().appendingPathComponent(name).path
        guard let beside, FileManager.default.isExecutableFile(atPath: beside) else {
            throw StartupError("no \(name) next to \(own?.lastPathComponent ?? "this program") (\(beside ?? "?")): "
                + "build it with `swift build --product \(name)`, or pass \(flag)")
        }
        return beside
    }

    /// `requested` (a `--log-dir`), created if missing, or a new temporary directory `PREFIX.XXXXXX`
    /// in `$TMPDIR` or /tmp.
    /// - Throws: ``StartupError`` when the directory cannot be created.
    public static func logDirectory(_ requested: String?, prefix: String) throws(StartupError) -> String {
        if let requested {
            do {
                try FileManager.default.createDirectory(atPath: requested, withIntermediateDirectories: true)
            } catch {
                throw StartupError("cannot create --log-dir \(requested): \(error.localizedDescription)")
            }
            return requested
        }
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        var template = Array("\(base)/\(prefix).XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else {
            throw StartupError("cannot create a log directory in \(base): \(String(cString: strerror(errno)))")
        }
        return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
