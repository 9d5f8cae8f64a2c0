//! (metrics: not yet written)
