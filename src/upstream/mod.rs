//! Upstream memcached pools (not yet written).
