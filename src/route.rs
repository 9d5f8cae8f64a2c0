//! (route: not yet written)
