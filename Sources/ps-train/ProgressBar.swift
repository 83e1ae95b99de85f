import Foundation

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

func format(_ value: Double, _ decimals: Int) -> String { String(format: "%.\(decimals)f", value) }

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

