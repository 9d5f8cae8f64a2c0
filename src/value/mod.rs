//! What sits around a pickle inside a memcache value: the client flag bits that mark a pickle
//! ([`flags`]) and the zlib layer some clients add ([`compress`]). Sans-IO: no tokio, no I/O.
pub mod compress;
pub mod flags;

pub use flags::{Envelope, Flags, ValueFlags};
