//! Real memcached and in-process proxy on free loopback ports (not yet written).
