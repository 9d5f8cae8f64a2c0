//! Client-library flag bits: how a memcache value says "I am a pickle" and "I am zlib-compressed".
//!
//! The memcache protocol carries an opaque 32-bit `flags` word per item; Python client libraries
//! use it to say how they serialized the value. All of python-memcached, pymemcache, pylibmc and
//! Django's cache backends agree on the two bits picklebridge needs:
//!
//! | bit | python-memcached      | pymemcache          | pylibmc              |
//! |-----|-----------------------|---------------------|----------------------|
//! | 1   | `_FLAG_PICKLE`        | `FLAG_PICKLE`       | `PYLIBMC_FLAG_PICKLE`|
//! | 8   | `_FLAG_COMPRESSED`    | (CompressedSerde)   | `PYLIBMC_FLAG_ZLIB`  |
//!
//! Both masks are per-route configuration ([`ValueFlags`]), as is the text bit (16 in
//! python-memcached and pymemcache, `bool` in pylibmc) that [`super::bare`] needs to convert
//! strings stored unpickled. This module only classifies; it never changes the flags word (only
//! a bare string's conversion does).

/// The 32-bit client flags word of a memcache item.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(pub u32);

/// The flag bits a route uses to recognize pickled and compressed values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueFlags {
    /// Any of these bits set means "the value is a pickle". Default `1`.
    pub pickle_mask: u32,
    /// This bit set (together with a pickle bit) means "zlib-compressed pickle". `0` disables
    /// decompression. Default `8`.
    pub zlib_flag: u32,
    /// This bit set (and no pickle bit) means "UTF-8 text stored unpickled"; `0` (default)
    /// leaves such values alone. See [`super::bare`].
    pub text_flag: u32,
}

impl Default for ValueFlags {
    fn default() -> Self {
        ValueFlags {
            pickle_mask: 1,
            zlib_flag: 8,
            text_flag: 0,
        }
    }
}

/// What the flags word says about a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Envelope {
    /// Not a pickle (bytes, text, int, long...): never touched.
    Plain,
    /// A pickle stored as is.
    Pickle,
    /// A pickle compressed with zlib (RFC 1950, as `zlib.compress` writes it).
    ZlibPickle,
}

impl ValueFlags {
    /// Classifies a flags word.
    pub fn classify(&self, flags: Flags) -> Envelope {
        if flags.0 & self.pickle_mask == 0 {
            Envelope::Plain
        } else if self.zlib_flag != 0 && flags.0 & self.zlib_flag != 0 {
            Envelope::ZlibPickle
        } else {
            Envelope::Pickle
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_table() {
        let vf = ValueFlags::default();
        let cases = [
            (0, Envelope::Plain),
            (2, Envelope::Plain),  // python-memcached int
            (8, Envelope::Plain),  // compressed but not pickled (compressed bytes)
            (16, Envelope::Plain), // pymemcache text
            (1, Envelope::Pickle),
            (1 | 16, Envelope::Pickle),
            (1 | 8, Envelope::ZlibPickle),
        ];
        for (flags, want) in cases {
            assert_eq!(vf.classify(Flags(flags)), want, "flags {flags}");
        }
    }

    #[test]
    fn zlib_disabled_and_custom_mask() {
        let vf = ValueFlags {
            pickle_mask: 0x100,
            zlib_flag: 0,
            text_flag: 0,
        };
        assert_eq!(vf.classify(Flags(1)), Envelope::Plain);
        assert_eq!(vf.classify(Flags(0x108)), Envelope::Pickle);
    }
}
