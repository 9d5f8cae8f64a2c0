//! The string keys of dicts and sets, kept so that a value whose containers mix string kinds
//! (py2 `str`, text, bytes) is still the fast path's when no two of those keys hold the same
//! content.
//!
//! Two distinct keys only become equal in the target when their contents are equal: every
//! conversion keeps the content (a py2 `str` becomes text with the same UTF-8 or bytes with the
//! same bytes, text becomes a UTF-8 py2 `str`, bytes a py2 `str` of the same bytes), except
//! latin-1 text for a Python 3 reader, whose non-ASCII keys are therefore left to the general
//! path. So keys with pairwise distinct contents cannot collide, and a container with two equal
//! contents (a real collision, or the same key twice) is the general path's to judge: it
//! compares them as the target will see them (`scan/collide.rs`). Tuple and frozenset keys,
//! compared there as a whole, stay here only where no container has one holding strings next
//! to another ([`Keys::one_composite_each`]).

use std::borrow::Cow;

use super::super::super::opcode as op;
use super::super::super::strings;
use super::super::decode::{next, py2_str_bytes};
use super::super::reuse;
use super::{
    kind, payload, SetInfo, Tag, BYTES, CONTAINER, OBJECT, OPEN_SET, PLAIN_TUPLE, PY2_STR, TEXT,
    TUPLE,
};

/// Keys recorded in one pass (see [`Keys::distinct`]).
#[derive(Default)]
pub(super) struct Keys {
    /// The items of each batch (SETITEM(S), DICT, ADDITEMS, FROZENSET), in order: copied as
    /// they are (a memcpy), values between a dict's keys.
    tags: Vec<Tag>,
    batches: Vec<Batch>,
    /// While checking: (container, content) of each string key of a mixed container; content
    /// as a span of the pickle, or (`OWNED` set) of `owned`.
    spans: Vec<(Tag, u32, u32)>,
    /// Decoded contents of protocol-0 keys written with escapes.
    owned: Vec<u8>,
}

/// In a span's start: the content is in [`Keys::owned`], not the pickle.
const OWNED: u32 = 1 << 31;

/// Items added to a dict or set: its tag, and its keys as every `step`-th of `tags[start..end]`.
#[derive(Clone, Copy)]
struct Batch {
    container: Tag,
    start: u32,
    end: u32,
    step: u32,
}

/// A batch whose container is not known yet (see [`Keys::close`]).
#[derive(Clone, Copy)]
pub(super) struct Open {
    start: u32,
    step: u32,
}

impl Keys {
    /// Forgets the previous value's keys.
    pub(super) fn clear(&mut self) {
        self.tags.clear();
        self.batches.clear();
    }

    /// Gives back what a huge value grew past `keep` entries.
    #[inline(always)]
    pub(super) fn trim(&mut self, keep: usize) {
        reuse(&mut self.tags, keep);
        reuse(&mut self.batches, keep);
        reuse(&mut self.spans, keep);
        reuse(&mut self.owned, keep);
    }

    /// Keeps `items`, whose every `step`-th is a key or member: a batch that [`Keys::close`]
    /// says whose it is.
    #[inline(always)]
    pub(super) fn open(&mut self, items: &[Tag], step: u32) -> Open {
        let start = self.tags.len() as u32;
        self.tags.extend_from_slice(items);
        Open { start, step }
    }

    /// The keys of `batch` went into `container` (a dict's or set's tag; anything else has no
    /// keys to compare).
    #[inline(always)]
    pub(super) fn close(&mut self, batch: Open, container: Tag) {
        let end = self.tags.len() as u32;
        // Protocol 0's SETITEM per item: one batch per dict. Every batch is whole (the scan
        // leaves a DICT or SETITEMS of an odd number of items to the general path, which
        // refuses it), so a merged batch never reads the next batch's keys as values.
        debug_assert_eq!(
            (end - batch.start) % batch.step,
            0,
            "a batch with an odd item"
        );
        if let Some(last) = self.batches.last_mut() {
            if last.container == container && last.end == batch.start && last.step == batch.step {
                last.end = end;
                return;
            }
        }
        self.batches.push(Batch {
            container,
            start: batch.start,
            end,
            step: batch.step,
        });
    }

    /// The keys of each batch, with their container's tag.
    fn each(&self) -> impl Iterator<Item = (Tag, Option<impl Iterator<Item = Tag> + '_>)> + '_ {
        self.batches.iter().map(|b| {
            let keys = self
                .tags
                .get(b.start as usize..b.end as usize)
                .map(|items| items.iter().step_by(b.step as usize).copied());
            (b.container, keys)
        })
    }

    /// Whether no dict or set has a key compared as a whole that holds strings (a [`TUPLE`],
    /// a dict or set) next to another key compared as a whole ([`PLAIN_TUPLE`]s too). Tuple and
    /// frozenset keys can only collide with one another, and one without strings inside with
    /// none (the general path's digest is that of its numbers' ops); but the general path
    /// refuses a container whose composite keys cannot all be digested (a tuple holding an
    /// object) when it has two of them.
    #[cold]
    #[inline(never)]
    pub(super) fn one_composite_each(&self, keyed: &[u8], sets: &[SetInfo]) -> bool {
        // (container, holds strings) per composite key.
        let mut found: Vec<(Tag, bool)> = Vec::new();
        for (c, keys) in self.each() {
            let Some(keys) = keys else {
                return false;
            };
            let keyed = kinds_of(c, keyed, sets).is_some();
            for t in keys.filter(|_| keyed) {
                if matches!(kind(t), TUPLE | CONTAINER | OPEN_SET) || t == PLAIN_TUPLE {
                    found.push((c, t != PLAIN_TUPLE));
                }
            }
        }
        // Sorted, a container's keys holding strings come last: one of them right after
        // another key of the same container is a second such key.
        found.sort_unstable();
        !found.windows(2).any(|w| w[0].0 == w[1].0 && w[1].1)
    }

    /// Whether a dict or set has an [`OBJECT`] key or member (built by a call: it may compare
    /// by its arguments, or equal a string key, so `scan.rs` judges it). Looked for only in a
    /// value with strings of two kinds, over the kept batches (a plain search first).
    #[inline(never)]
    pub(super) fn object_key(&self, keyed: &[u8], sets: &[SetInfo]) -> bool {
        if !self.tags.contains(&OBJECT) {
            return false;
        }
        self.each().any(|(c, keys)| {
            kinds_of(c, keyed, sets).is_some() && keys.map_or(true, |mut k| k.any(|t| t == OBJECT))
        })
    }

    /// Whether the string keys of each container that mixes string kinds (as `keyed` and `sets`
    /// record them) hold pairwise distinct contents. `latin1`: a Python 3 reader's py2 `str`
    /// policy is latin-1 text. `false` also when a key cannot be read here.
    #[cold]
    #[inline(never)]
    pub(super) fn distinct(
        &mut self,
        src: &[u8],
        latin1: bool,
        keyed: &[u8],
        sets: &[SetInfo],
    ) -> bool {
        let mixed = |c: Tag| kinds_of(c, keyed, sets).is_some_and(|k| (k & 7).count_ones() > 1);
        let mut spans = std::mem::take(&mut self.spans);
        let mut owned = std::mem::take(&mut self.owned);
        spans.clear();
        owned.clear();
        // Contents compared, at most twice the pickle's size: memo GETs could otherwise repeat
        // one long key until sorting costs seconds (such a value is the general path's).
        let mut total = 0usize;
        let budget = 2 * src.len();
        let distinct = self.each().all(|(c, keys)| {
            if !mixed(c) {
                return true;
            }
            let Some(keys) = keys else {
                return false;
            };
            for t in keys {
                if !matches!(kind(t), PY2_STR | TEXT | BYTES) {
                    continue;
                }
                let Some(content) = content(src, t, latin1) else {
                    return false;
                };
                total += content.len();
                if total > budget {
                    return false;
                }
                let span = match content {
                    Cow::Borrowed(s) => (s.as_ptr() as usize - src.as_ptr() as usize, s.len()),
                    Cow::Owned(s) => {
                        owned.extend_from_slice(&s);
                        (OWNED as usize | (owned.len() - s.len()), s.len())
                    }
                };
                let (Ok(at), Ok(len)) = (u32::try_from(span.0), u32::try_from(span.1)) else {
                    return false;
                };
                spans.push((c, at, len));
            }
            true
        });
        let bytes = |&(_, at, len): &(Tag, u32, u32)| {
            let (from, at) = match at & OWNED {
                0 => (src, at as usize),
                _ => (&owned[..], (at & !OWNED) as usize),
            };
            &from[at..at + len as usize]
        };
        let distinct = distinct && {
            spans.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| bytes(a).cmp(bytes(b))));
            !spans
                .windows(2)
                .any(|w| w[0].0 == w[1].0 && bytes(&w[0]) == bytes(&w[1]))
        };
        (self.spans, self.owned) = (spans, owned);
        distinct
    }
}

/// The key kinds recorded for container `c` (a dict's or set's tag; `None` for anything else).
fn kinds_of(c: Tag, keyed: &[u8], sets: &[SetInfo]) -> Option<u8> {
    match kind(c) {
        CONTAINER => keyed.get(payload(c)).copied(),
        OPEN_SET => sets.get(payload(c)).map(|s| s.kinds),
        _ => None,
    }
}

/// The content of a string key: a py2 `str`'s bytes, text as UTF-8, bytes; `None` where this
/// module does not compare it (latin-1 conversion of a non-ASCII py2 `str`, undecodable).
fn content(src: &[u8], t: Tag, latin1: bool) -> Option<Cow<'_, [u8]>> {
    let o = next(src, payload(t))?;
    match kind(t) {
        PY2_STR => {
            let bytes = py2_str_bytes(src, o)?;
            (!latin1 || bytes.is_ascii()).then_some(bytes)
        }
        TEXT if o.code == op::UNICODE => {
            let text = strings::decode_raw_unicode_escape(o.arg(src))?;
            Some(Cow::Owned(text.into_bytes()))
        }
        _ => Some(Cow::Borrowed(o.arg(src))),
    }
}
