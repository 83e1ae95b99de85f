// Placeholder until the WireCodec module lands; replaced by its implementation.
