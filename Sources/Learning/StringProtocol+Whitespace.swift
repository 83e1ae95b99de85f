extension StringProtocol {
    /// The text without leading and trailing whitespace, for parsing lists such as `"256, 128"`.
    ///
    /// FoundationEssentials, which the executables use instead of Foundation to stay small, has no
    /// `CharacterSet` and so no `trimmingCharacters(in:)`.
    public func trimmingWhitespace() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }), let last = lastIndex(where: { !$0.isWhitespace }) else {
            return ""
        }
        return String(self[first...last])
    }
}
