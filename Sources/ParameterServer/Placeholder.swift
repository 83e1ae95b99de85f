// Placeholder until the ParameterServer module lands; replaced by its implementation.
