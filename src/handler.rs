//! (handler: not yet written)
