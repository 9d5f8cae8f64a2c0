//! (config: not yet written)
