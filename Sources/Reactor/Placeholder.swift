// Placeholder until the Reactor module lands; replaced by its implementation.
