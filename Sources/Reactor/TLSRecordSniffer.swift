/// Tells TLS from Downpour's plaintext frames by the first bytes of a stream, so that a connection
/// whose peer speaks the other protocol fails at once with a clear error, not after waiting for a
/// frame of a nonsensical length.
///
/// A TLS stream begins with a record header: a content type (22, handshake; or 21, alert), the
/// version 3.x, and a two-byte big-endian length. A Downpour stream begins with a four-byte
/// little-endian frame length, then its payload.
enum TLSRecordSniffer {
    static let handshakeRecord: UInt8 = 0x16
    static let alertRecord: UInt8 = 0x15

    /// The record a TLS server sends a peer that spoke plaintext to it: a fatal `unexpected_message`
    /// alert, which a Downpour plaintext client recognises (``looksLikeTLS(_:)``) and reports.
    static let unexpectedMessageAlert: [UInt8] = [alertRecord, 0x03, 0x03, 0x00, 0x02, 0x02, 0x0A]

    /// Whether `bytes`, the first a TLS endpoint received, may begin a TLS record.
    ///
    /// A server accepts a handshake record only; a client also an alert (a server refusing its
    /// ClientHello). Only the bytes present are checked: with too few the answer is yes, and OpenSSL
    /// judges the rest.
    static func canBeginTLS(_ bytes: UnsafeRawBufferPointer, fromServer: Bool) -> Bool {
        guard let type = bytes.first else { return true }
        guard type == handshakeRecord || (fromServer && type == alertRecord) else { return false }
        if bytes.count >= 2 && bytes[1] != 0x03 { return false }
        // Record versions 3.1 to 3.4: what TLS 1.0 to 1.3 stacks send (3.0 is SSL 3, which nothing
        // speaks, and would make a 790-byte plaintext frame look like a record).
        if bytes.count >= 3 && !(0x01...0x04).contains(bytes[2]) { return false }
        return true
    }

    /// Whether `bytes`, the first a plaintext endpoint received, are TLS: a ClientHello or
    /// ServerHello, or an alert.
    ///
    /// Nine bytes of a hello (or seven of an alert) must fit the record and message layout, so a
    /// Downpour stream matches only if its first frame has one of a handful of lengths near 64 KiB
    /// *and* its payload begins with bytes that repeat that length: nothing the protocol sends.
    static func looksLikeTLS(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= 7, bytes[1] == 0x03, (0x01...0x04).contains(bytes[2]) else { return false }
        let recordLength = Int(bytes[3]) << 8 | Int(bytes[4])
        switch bytes[0] {
        case alertRecord:
            // An alert record holds exactly a level (1 warning, 2 fatal) and a description.
            return recordLength == 2 && (bytes[5] == 1 || bytes[5] == 2)
        case handshakeRecord:
            guard bytes.count >= 9, (4...(16 << 10)).contains(recordLength),
                  bytes[5] == 1 || bytes[5] == 2 else { return false }
            // The hello's own 24-bit length: at least a version, a random and a session id; a
            // ClientHello fills its record (or spills over into the next), a ServerHello may share its.
            let messageLength = Int(bytes[6]) << 16 | Int(bytes[7]) << 8 | Int(bytes[8])
            return bytes[6] == 0 && messageLength >= 38 && (bytes[5] == 2 || messageLength + 4 >= recordLength)
        default:
            return false
        }
    }

    /// The first bytes as hex, for messages: `"0a 00 00 00 08 01"`.
    static func describe(_ bytes: UnsafeRawBufferPointer) -> String {
        let hex: [Character] = Array("0123456789abcdef")
        return bytes.prefix(8).map { String([hex[Int($0 >> 4)], hex[Int($0 & 15)]]) }.joined(separator: " ")
    }
}
