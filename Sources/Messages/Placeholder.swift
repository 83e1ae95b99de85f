// Placeholder until the Messages module lands; replaced by its implementation.
