//! (server: not yet written)
