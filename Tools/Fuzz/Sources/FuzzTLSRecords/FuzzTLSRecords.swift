import Reactor

/// libFuzzer's entry point: hostile bytes against the TLS path of `FrameConnection`, without a socket:
/// a `TLSSession` fed through memory, its plaintext split into frames by a `FrameDecoder` exactly as
/// `FrameConnection` does (direct decryption into large frames' buffers included).
///
/// Input layout: byte 0 selects the mode (modulo 4), byte 1 seeds the slicing of the byte streams
/// (``SliceSchedule``), the rest is the data:
/// - 0: the data is ciphertext from a client, into a fresh server session.
/// - 1: the data is a server's answer to a fresh client's ClientHello.
///   In both, whatever the bytes, the session never traps and never completes a handshake (that
///   would need the server's key, or a forged signature); it fails with a `.tls` error at most once
///   and rethrows that same error on every later call.
/// - 2: the data is the plaintext byte stream a client sends (length prefixes and all) over an
///   established session, written in records of fuzzed sizes and delivered in fuzzed slices: the
///   server must decode exactly the frames (and the error, if a length prefix is refused) that one
///   `FrameDecoder` gets from the whole stream at once.
/// - 3: as 2 with a fixed stream, but the data is XORed onto the ciphertext: the server must never
///   deliver a frame that was not sent (AEAD), only a prefix of the true frames, then a `.tls` error
///   (or wait for the rest of a record whose length was changed).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTLSRecords(_ data: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count >= 2 else { return 0 }
    let input = Array(UnsafeRawBufferPointer(start: data, count: count))
    let schedule = SliceSchedule(seed: input[1])
    let body = input[2...]
    switch input[0] % 4 {
    case 0: garbageIntoServer(body, schedule)
    case 1: garbageIntoClient(body, schedule)
    case 2: framesThroughSession(body, schedule, seed: input[1])
    default: tamperedCiphertext(body, schedule)
    }
    return 0
}

/// Arbitrary bytes where a ClientHello should be.
private func garbageIntoServer(_ bytes: ArraySlice<UInt8>, _ schedule: SliceSchedule) {
    let server = try! TLSSession(context: TLSFixtures.server)
    expectGarbageRefused(bytes, by: server, schedule)
}

/// Arbitrary bytes where the server's answer to a ClientHello should be.
private func garbageIntoClient(_ bytes: ArraySlice<UInt8>, _ schedule: SliceSchedule) {
    let client = try! TLSSession(context: TLSFixtures.client, serverName: "localhost")
    try! client.startHandshake()
    var hello = [UInt8](repeating: 0, count: client.pendingCiphertext)
    _ = hello.withUnsafeMutableBytes { client.takeCiphertext(into: $0) }
    check(!hello.isEmpty, "a client produced no ClientHello")
    expectGarbageRefused(bytes, by: client, schedule)
}

private func expectGarbageRefused(_ bytes: ArraySlice<UInt8>, by session: TLSSession, _ schedule: SliceSchedule) {
    let sink = FrameCollector(maxFrameLength: 1 << 20, directReadMinimum: 64)
    var failure: ReactorError?
    do throws(ReactorError) {
        _ = try feed(bytes, to: session, sink: sink, schedule: schedule)
    } catch {
        failure = error
    }
    check(!session.isEstablished, "a handshake completed from \(bytes.count) arbitrary bytes")
    check(sink.frames.isEmpty && sink.plaintextBytes == 0, "plaintext came out of a session that never completed its handshake")
    guard let failure else { return }
    guard case .tls = failure.kind else { return check(false, "a non-TLS error: \(failure)") }
    check(session.failure == failure, "the session did not keep its failure")
    // The alert for the peer can be taken, and the session refuses to go on.
    var alert = [UInt8](repeating: 0, count: session.pendingCiphertext)
    _ = alert.withUnsafeMutableBytes { session.takeCiphertext(into: $0) }
    do throws(ReactorError) {
        _ = try withBytes([UInt8](repeating: 0x16, count: 8)[...]) { bytes throws(ReactorError) in
            try session.process(bytes, scratch: TLSFixtures.scratch, into: sink)
        }
        check(false, "a failed session took more ciphertext")
    } catch {
        check(error == failure, "a failed session threw \(error) after \(failure)")
    }
}

/// Writes `stream` as plaintext from the pair's client, in records of sizes from `schedule`.
private func write(_ stream: ArraySlice<UInt8>, from client: TLSSession, _ schedule: inout SliceSchedule) {
    var offset = stream.startIndex
    while offset < stream.endIndex {
        let count = min(schedule.next(), TLSSession.maxRecordPlaintext, stream.endIndex - offset)
        try! stream[offset..<(offset + count)].withUnsafeBytes { try client.write($0) }
        offset += count
    }
}

/// The frames one decoder gets from the whole stream at once, and its error if it throws.
private func reference(_ stream: ArraySlice<UInt8>, maxFrameLength: Int) -> (frames: [[UInt8]], thrown: ReactorError?) {
    var decoder = FrameDecoder(maxFrameLength: maxFrameLength)
    var frames: [[UInt8]] = []
    do throws(ReactorError) {
        try withBytes(stream) { bytes throws(ReactorError) in
            try decoder.decode(bytes) { frames.append(Array($0)) }
        }
    } catch {
        return (frames, error)
    }
    return (frames, nil)
}

private func framesThroughSession(_ stream: ArraySlice<UInt8>, _ schedule: SliceSchedule, seed: UInt8) {
    let pair = TLSFixtures.establishedPair()
    let maxFrameLength = 64 + Int(seed) * 64
    var writes = schedule
    write(stream, from: pair.client, &writes)
    let sink = FrameCollector(maxFrameLength: maxFrameLength, directReadMinimum: 1 + Int(seed % 32))
    let outcome: TLSSession.Outcome
    do throws(ReactorError) {
        outcome = try move(from: pair.client, to: pair.server, sink: sink, schedule: schedule)
    } catch {
        pair.usable = false
        return check(false, "valid ciphertext failed: \(error)")
    }
    check(outcome == .needsCiphertext, "valid ciphertext ended with \(outcome)")
    check(sink.plaintextBytes == stream.count, "decrypted \(sink.plaintextBytes) bytes of \(stream.count)")
    let expected = reference(stream, maxFrameLength: maxFrameLength)
    check(sink.frames == expected.frames, "got \(sink.frames.count) frames where one decoder gets \(expected.frames.count)")
    check(sink.thrown == expected.thrown, "threw \(String(describing: sink.thrown)), one decoder \(String(describing: expected.thrown))")
}

private func tamperedCiphertext(_ mask: ArraySlice<UInt8>, _ schedule: SliceSchedule) {
    let pair = TLSFixtures.establishedPair()
    let frames: [[UInt8]] = [Array("first".utf8), [UInt8](repeating: 7, count: 300), Array("third".utf8)]
    var stream: [UInt8] = []
    for frame in frames { stream += withUnsafeBytes(of: UInt32(frame.count).littleEndian, Array.init) + frame }
    var writes = schedule
    write(stream[...], from: pair.client, &writes)
    var ciphertext = [UInt8](repeating: 0, count: pair.client.pendingCiphertext)
    _ = ciphertext.withUnsafeMutableBytes { pair.client.takeCiphertext(into: $0) }
    var tampered = false
    for (index, byte) in mask.enumerated() where index < ciphertext.count && byte != 0 {
        ciphertext[index] ^= byte
        tampered = true
    }
    let sink = FrameCollector(maxFrameLength: 1 << 20, directReadMinimum: 16)
    var failure: ReactorError?
    do throws(ReactorError) {
        _ = try feed(ciphertext[...], to: pair.server, sink: sink, schedule: schedule)
    } catch {
        failure = error
    }
    if tampered { pair.usable = false }
    check(sink.frames.count <= frames.count && Array(frames.prefix(sink.frames.count)) == sink.frames,
          "a tampered stream delivered frames that were not sent")
    if !tampered {
        check(failure == nil && sink.frames == frames, "untampered ciphertext did not decrypt to its frames")
    } else if let failure {
        // Otherwise a tampered length left the server waiting for the rest of a record.
        guard case .tls = failure.kind else { return check(false, "tampering was refused with a non-TLS error: \(failure)") }
    }
}
