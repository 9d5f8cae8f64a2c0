//! Memcache protocol codec (not yet written).
