import FoundationEssentials
import Glibc

/// A one-line progress bar redrawn in place, for terminals only.
final class ProgressBar {
    func show(epoch: Int, of epochs: Int, done: Int, total: Int, loss: Double) {
        let width = 30
        let filled = width * done / max(total, 1)
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        print("\repoch \(epoch)/\(epochs) [\(bar)] \(done)/\(total) loss \(format(loss, 4))", terminator: "")
        fflush(nil)
    }

    func clear() {
        print("\r\u{1B}[2K", terminator: "")
        fflush(nil)
    }
}

/// `value` with `decimals` decimals, as C's `%.Nf` writes it (Foundation's `String(format:)` would pull
/// Foundation and its ICU data into the executable).
func format(_ value: Double, _ decimals: Int) -> String {
    var text = [CChar](repeating: 0, count: 352)  // %f of the largest double is 309 digits plus decimals
    _ = withVaList([value]) { vsnprintf(&text, text.count, "%.\(min(decimals, 20))f", $0) }
    return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

