//! One file per command family (STYLE rule 7): each parses its request line with memcached's
//! exact checks and order, composes the request for the upstream, and carries its tests.
//! Families get an already tokenized line and a token-count-checked dispatch from
//! [`crate::protocol`]; none of them does I/O.

pub mod arith;
pub mod delete;
pub mod meta;
pub mod misc;
pub mod retrieval;
pub mod storage;
pub mod touch;

#[cfg(test)]
pub(crate) mod testutil;
