// Placeholder until the Learning module lands; replaced by its implementation.
