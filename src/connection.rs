//! (connection: not yet written)
