//! Memcache value envelope (not yet written).
