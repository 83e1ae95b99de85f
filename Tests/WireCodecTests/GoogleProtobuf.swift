import Foundation

/// Google's protobuf runtime, through Python, as the reference for decoding: it says whether it
/// accepts bytes as a message of `Schemas/TestMessages` and what it re-encodes them to.
///
/// Debian's `python3-protobuf` (installed by `Tools/scripts/install-deps.sh`) runs Google's C++
/// parser underneath. Every call is one Python process for any number of messages, so a test of
/// thousands of inputs takes about a second.
enum GoogleProtobuf {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Google's verdict on one input.
    enum Verdict: Equatable {
        /// Accepted and re-encoded by `SerializeToString(deterministic=True)`, map entries in key order.
        ///
        /// Fields inside a map entry other than its key and value (or a key or value with the wrong
        /// wire type) are dropped first, as Google's generated C++, Java and Go code drop them;
        /// `droppedFromMapEntries` says whether there were any. Python's C++ runtime, which decodes
        /// through reflection, would otherwise write them back inside the entry, and upb would keep
        /// the whole entry as an unknown field: Google's runtimes disagree on this one point.
        case accepted([UInt8], droppedFromMapEntries: Bool)
        case rejected

        /// The re-encoded bytes, or `nil` when rejected.
        var bytes: [UInt8]? {
            if case .accepted(let bytes, _) = self { return bytes }
            return nil
        }
    }

    /// Parses each input as the message of that full name (such as `downpour.test.Everything`) and
    /// re-encodes what parsed.
    ///
    /// An input counts as rejected when parsing throws or warns: Python's `MergeFromString` stops at
    /// a stray end-group tag or a zero tag with only a warning, where C++'s `ParseFromString` fails.
    static func reencode(_ inputs: [(type: String, bytes: [UInt8])]) throws -> [Verdict] {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("google-protobuf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }

        // Python classes for the test schemas, made by the same protoc the other conformance tests use.
        try run(["/usr/bin/env", "protoc", "-I", Protoc.schemaFolder.path, "--python_out=\(folder.path)", "conformance.proto", "common.proto"])

        var request: [UInt8] = []
        for input in inputs {
            append(Array(input.type.utf8), to: &request)
            append(input.bytes, to: &request)
        }
        let inputURL = folder.appendingPathComponent("in")
        let outputURL = folder.appendingPathComponent("out")
        let scriptURL = folder.appendingPathComponent("reencode.py")
        try Data(request).write(to: inputURL)
        try Data(script.utf8).write(to: scriptURL)
        try run(python() + [scriptURL.path, folder.path, inputURL.path, outputURL.path])

        let response = Array(try Data(contentsOf: outputURL))
        var verdicts: [Verdict] = []
        var offset = 0
        while offset < response.count {
            let status = response[offset]
            let count = response[(offset + 1)..<(offset + 5)].reversed().reduce(0) { $0 << 8 | Int($1) }
            let bytes = Array(response[(offset + 5)..<(offset + 5 + count)])
            verdicts.append(status == 0 ? .rejected : .accepted(bytes, droppedFromMapEntries: status == 2))
            offset += 5 + count
        }
        guard verdicts.count == inputs.count else {
            throw Failure(description: "Python answered \(verdicts.count) of \(inputs.count) inputs")
        }
        return verdicts
    }

    private static func append(_ bytes: [UInt8], to buffer: inout [UInt8]) {
        withUnsafeBytes(of: UInt32(bytes.count).littleEndian) { buffer.append(contentsOf: $0) }
        buffer.append(contentsOf: bytes)
    }

    /// The command that starts a Python with protobuf: Debian's interpreter first, since `python3` on
    /// the PATH may be another one, without the package.
    private static func python() throws -> [String] {
        for command in [["/usr/bin/python3"], ["/usr/bin/env", "python3"]] {
            if (try? run(command + ["-c", "import google.protobuf"])) != nil { return command }
        }
        throw Failure(description: "no python3 with google.protobuf: install the Debian package python3-protobuf (Tools/scripts/install-deps.sh)")
    }

    /// Runs a command with its output to files, so that megabytes cannot fill a pipe.
    private static func run(_ command: [String]) throws {
        let errorURL = FileManager.default.temporaryDirectory.appendingPathComponent("google-protobuf-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: errorURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errorURL) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: errorURL)
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let message = (try? String(contentsOf: errorURL, encoding: .utf8)) ?? ""
            throw Failure(description: "\(command.prefix(3).joined(separator: " ")) failed: \(message.suffix(2000))")
        }
    }

    /// Reads length-prefixed (type name, bytes) records and writes (status, length, bytes) records:
    /// status 0 for rejected, 1 for accepted, 2 for accepted once fields were dropped from map entries.
    private static let script = """
        import struct, sys, warnings
        sys.path.insert(0, sys.argv[1])
        import common_pb2, conformance_pb2

        def message_class(full_name):
            path = full_name.split(".")[2:]  # drop the package, downpour.test
            for module in (conformance_pb2, common_pb2):
                found = module
                for part in path:
                    found = getattr(found, part, None)
                if found is not None:
                    return found
            raise KeyError(full_name)

        def drop_map_entry_fields(message):
            # Rebuilding a map through its Python API makes entries of key and value alone.
            for field, value in message.ListFields():
                if field.message_type is None:
                    continue
                if field.message_type.GetOptions().map_entry:
                    if field.message_type.fields_by_name["value"].message_type is None:
                        items = dict(value)
                        value.clear()
                        value.update(items)
                    else:
                        items = {key: value[key].SerializeToString() for key in list(value)}
                        value.clear()
                        for key, encoded in items.items():
                            value[key].ParseFromString(encoded)
                            drop_map_entry_fields(value[key])
                elif field.label == field.LABEL_REPEATED:
                    for item in value:
                        drop_map_entry_fields(item)
                else:
                    drop_map_entry_fields(value)

        data = open(sys.argv[2], "rb").read()
        out = bytearray()
        offset = 0
        def take():
            global offset
            (count,) = struct.unpack_from("<I", data, offset)
            chunk = data[offset + 4:offset + 4 + count]
            offset += 4 + count
            return chunk
        classes = {}
        while offset < len(data):
            name = take().decode()
            payload = take()
            cls = classes.get(name) or classes.setdefault(name, message_class(name))
            message = cls()
            # A stray end-group or zero tag only warns ("Unexpected end-group tag"), even as the
            # input's last bytes, where C++'s ParseFromString fails: a warning is a rejection.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    accepted = message.MergeFromString(payload) == len(payload)
                except Exception:
                    accepted = False
            accepted = accepted and not caught
            status, encoded = 0, b""
            if accepted:
                before = message.SerializeToString(deterministic=True)
                drop_map_entry_fields(message)
                encoded = message.SerializeToString(deterministic=True)
                status = 1 if encoded == before else 2
            out += struct.pack("<BI", status, len(encoded)) + encoded
        open(sys.argv[3], "wb").write(out)
        """
}
