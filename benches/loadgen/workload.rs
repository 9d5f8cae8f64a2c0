//! The loads: key spaces, values (plain bytes or protocol-4 pickles) and the requests sent.
//!
//! Sans-IO: builds request bytes into a `Vec<u8>`; the async client in `client.rs` sends them.
//! Every load has its own key prefix so proxy routes (and a shared memcached) keep them apart.

use crate::pickle4;

/// One of the loads of issue 5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Load {
    /// 100-byte values, 90 % get / 10 % set.
    Small,
    /// 2 KB values, 90 % get / 10 % set.
    Large,
    /// `get` of 10 keys per request, 100-byte values.
    Multiget,
    /// ~1 KB protocol-4 pickles (flags 1), 100 % get: through a py2 listener every reply needs
    /// a downgrade to protocol 2, so every request takes the rewrite path.
    Pickle,
}

impl Load {
    /// All loads, in report order.
    pub const ALL: [Load; 4] = [Load::Small, Load::Large, Load::Multiget, Load::Pickle];

    /// Name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Load::Small => "small",
            Load::Large => "large",
            Load::Multiget => "multiget",
            Load::Pickle => "pickle",
        }
    }

    /// One-line description for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Load::Small => "100 B values, 90% get / 10% set",
            Load::Large => "2 KB values, 90% get / 10% set",
            Load::Multiget => "10-key get, 100 B values",
            Load::Pickle => "1 KB protocol-4 pickles (flags 1), 100% get",
        }
    }

    /// Default key prefix of the load (`bench:<load>:`).
    pub fn default_prefix(self) -> String {
        format!("bench:{}:", self.as_str())
    }

    /// Memcache client flags stored with the values (1 = python-memcached's pickle flag).
    pub fn flags(self) -> u32 {
        match self {
            Load::Pickle => 1,
            _ => 0,
        }
    }

    /// Percentage of requests that are sets.
    fn set_percent(self) -> u64 {
        match self {
            Load::Small | Load::Large => 10,
            Load::Multiget | Load::Pickle => 0,
        }
    }

    /// Keys per get request.
    pub fn keys_per_get(self) -> usize {
        match self {
            Load::Multiget => 10,
            _ => 1,
        }
    }

    /// Expected stored length of every value (for checking replies), if fixed. Pickle replies
    /// change length when a proxy rewrites them, so they are not checked by length.
    pub fn value_len(self) -> Option<usize> {
        match self {
            Load::Small | Load::Multiget => Some(100),
            Load::Large => Some(2048),
            Load::Pickle => None,
        }
    }

    /// The value stored under key number `idx`.
    pub fn value(self, idx: u64) -> Vec<u8> {
        match self {
            Load::Pickle => pickle4::user_profile(idx, 1024),
            _ => filler(idx, self.value_len().unwrap_or(100)),
        }
    }
}

/// `len` printable bytes that depend on `seed` (memcached stores them as-is).
fn filler(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed.wrapping_add(0x9E37_79B9_7F4A_7C15));
    (0..len).map(|_| b'a' + (rng.next() % 26) as u8).collect()
}

/// xorshift64*: a fast, seedable generator; good enough to pick keys and operations.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; zero is remapped).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// The next pseudo-random number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// What a request expects back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// `get` of this many keys: VALUE blocks then `END`.
    Values(usize),
    /// `set`: `STORED`.
    Stored,
}

/// Builds requests of one load; one per connection (own random stream).
pub struct Generator {
    load: Load,
    prefix: String,
    keys: u64,
    rng: Rng,
    /// Values to set, precomputed so the hot loop only copies bytes.
    set_values: Vec<Vec<u8>>,
}

impl Generator {
    /// A generator over `keys` keys under `prefix`, seeded with `seed`.
    pub fn new(load: Load, prefix: &str, keys: u64, seed: u64) -> Self {
        let set_values = if load.set_percent() > 0 {
            (0..16)
                .map(|i| load.value(seed.wrapping_mul(31) + i))
                .collect()
        } else {
            Vec::new()
        };
        Generator {
            load,
            prefix: prefix.to_owned(),
            keys: keys.max(1),
            rng: Rng::new(seed),
            set_values,
        }
    }

    /// Appends one random request to `out` and says what it expects back.
    pub fn push_request(&mut self, out: &mut Vec<u8>) -> Expect {
        let r = self.rng.next();
        if r % 100 < self.load.set_percent() {
            let idx = (r >> 8) % self.keys;
            let value = &self.set_values[(r >> 40) as usize % self.set_values.len()];
            push_set(out, &self.prefix, idx, self.load.flags(), value);
            return Expect::Stored;
        }
        out.extend_from_slice(b"get");
        let n = self.load.keys_per_get();
        for _ in 0..n {
            let idx = self.rng.next() % self.keys;
            out.push(b' ');
            push_key(out, &self.prefix, idx);
        }
        out.extend_from_slice(b"\r\n");
        Expect::Values(n)
    }
}

/// Appends `<prefix><idx>` (zero-padded to 8 digits so every key has the same length).
pub fn push_key(out: &mut Vec<u8>, prefix: &str, idx: u64) {
    use std::io::Write;
    out.extend_from_slice(prefix.as_bytes());
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{idx:08}");
}

/// Appends `set <key> <flags> 0 <bytes>\r\n<data>\r\n` (protocol.txt "Storage commands").
pub fn push_set(out: &mut Vec<u8>, prefix: &str, idx: u64, flags: u32, value: &[u8]) {
    use std::io::Write;
    out.extend_from_slice(b"set ");
    push_key(out, prefix, idx);
    let _ = write!(out, " {flags} 0 {}\r\n", value.len());
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}
