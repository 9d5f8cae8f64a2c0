//! Pass 1, key collisions: distinct dict keys / set members (py2 `str`, text, bytes) that would
//! become equal in the target runtime. Keys are recorded as slots; only containers that mix
//! kinds are decoded and hashed at the end.

use std::borrow::Cow;
use std::hash::{DefaultHasher, Hash, Hasher};

use super::*;

impl<'a, 'p> Scanner<'a, 'p> {
    /// Records the str-like items of `self.scratch` (every `step`-th: dict keys) for container `c`.
    pub(super) fn record_keys(&mut self, c: u32, step: usize) {
        if self.policy.is_none() {
            return;
        }
        if step == 1 && self.keeps_matter() == Some(Runtime::Py2) {
            // List items too: `array('u', [u'a'])` needs its text items kept (see `reduce`).
            for slot in &self.scratch {
                if let Slot::Text { src, via } = *slot {
                    self.item_texts.push((c, src, via));
                }
            }
        }
        let list = self.containers.get(c as usize).is_some_and(|info| !info.0);
        if list && !self.scratch.is_empty() {
            // What `OrderedDict([[key, value], ...])` needs (see `record_pair_keys`).
            self.list_first.entry(c).or_insert(self.scratch[0]);
            for slot in &self.scratch {
                if let Slot::Container(child) = *slot {
                    self.list_children.push((c, child));
                }
            }
        }
        for i in (0..self.scratch.len()).step_by(step) {
            let slot = self.scratch[i];
            if let Some(kind) = key_kind(&slot) {
                if let Some(info) = self.containers.get_mut(c as usize) {
                    info.1 |= 1 << kind;
                }
                self.keys.push(KeyRec { container: c, slot });
            }
        }
    }

    /// `collections.OrderedDict(pairs)`: the first items of the lists in list `pairs` are the
    /// keys of one more keyed container.
    pub(super) fn record_pair_keys(&mut self, pairs: u32) {
        if self.policy.is_none() {
            return;
        }
        let c = self.new_container(true);
        for i in 0..self.list_children.len() {
            let (parent, child) = self.list_children[i];
            let Some(&slot) = self.list_first.get(&child).filter(|_| parent == pairs) else {
                continue;
            };
            if let Some(kind) = key_kind(&slot) {
                if let Some(info) = self.containers.get_mut(c as usize) {
                    info.1 |= 1 << kind;
                }
                self.keys.push(KeyRec { container: c, slot });
            }
        }
    }

    /// Distinct keys can only become equal when one container mixes kinds (py2 str, text,
    /// bytes): only those keys are decoded and hashed.
    pub(super) fn check_collisions(&mut self) -> Result<(), TranscodeError> {
        let Some(policy) = self.policy else {
            return Ok(());
        };
        let containers = &self.containers;
        let mixed = |c: u32| {
            containers
                .get(c as usize)
                .is_some_and(|&(keyed, kinds)| keyed && kinds.count_ones() >= 2)
        };
        let mut hashed: Vec<(u32, u64, u64)> = self
            .keys
            .iter()
            .filter(|k| mixed(k.container))
            .filter_map(|k| key_hashes(self.src, &k.slot, policy).map(|(s, t)| (k.container, t, s)))
            .collect();
        hashed.sort_unstable();
        for w in hashed.windows(2) {
            if w[0].0 == w[1].0 && w[0].1 == w[1].1 && w[0].2 != w[1].2 {
                return Err(TranscodeError::new(ErrorKind::Collision, 0, None));
            }
        }
        Ok(())
    }
}

/// The source kind of a str-like key: 0 py2 `str`, 1 text, 2 bytes; `None` for other values.
fn key_kind(slot: &Slot) -> Option<u8> {
    match slot {
        Slot::Py2Str { .. } => Some(0),
        Slot::Text { .. } => Some(1),
        Slot::Bytes { .. } | Slot::CodecsBytes { .. } | Slot::EmptyBytes => Some(2),
        _ => None,
    }
}

/// Hashes of a str-like key as the source runtime sees it and as the target will.
fn key_hashes(src: &[u8], slot: &Slot, policy: &Policy) -> Option<(u64, u64)> {
    let at = |pos: usize| Reader::new(src.get(pos..)?).next()?.ok();
    // (source kind, content); kinds: 0 py2 str, 1 text, 2 bytes.
    let (kind, content): (u8, Vec<u8>) = match *slot {
        Slot::Py2Str { src: p, .. } => (0, strings::py2_str_bytes(&at(p)?)?.into_owned()),
        Slot::Text { src: p, .. } => (1, strings::text_utf8(&at(p)?)?.as_bytes().to_vec()),
        Slot::Bytes { src: p } => (2, at(p)?.arg.to_vec()),
        Slot::CodecsBytes { src: p } => {
            let text = strings::text_utf8(&at(p)?)?.into_owned();
            let bytes: Option<Vec<u8>> = text
                .chars()
                .map(|c| u8::try_from(u32::from(c)).ok())
                .collect();
            (2, bytes?)
        }
        Slot::EmptyBytes => (2, Vec::new()),
        _ => return None,
    };
    // Target view: ("s" py2 str | "u" unicode/str | "b" py3 bytes, content as UTF-8 or raw).
    let (tkind, tcontent): (u8, Cow<'_, [u8]>) = match (policy.target, kind) {
        (Runtime::Py2, 1) => match policy.py2_text {
            Py2Text::Utf8 => (b's', Cow::Borrowed(&content[..])),
            Py2Text::Keep if content.is_ascii() => (b's', Cow::Borrowed(&content[..])),
            Py2Text::Keep => (b'u', Cow::Borrowed(&content[..])),
        },
        (Runtime::Py2, _) => (b's', Cow::Borrowed(&content[..])),
        (Runtime::Py3, 0) => match strings::py3_form(&content, policy.py3_str) {
            Py3Form::Keep => (b'u', Cow::Borrowed(&content[..])),
            Py3Form::Text(t) => (b'u', Cow::Owned(t.as_bytes().to_vec())),
            Py3Form::Bytes => (b'b', Cow::Borrowed(&content[..])),
        },
        (Runtime::Py3, 1) => (b'u', Cow::Borrowed(&content[..])),
        (Runtime::Py3, _) => (b'b', Cow::Borrowed(&content[..])),
    };
    let hash = |k: u8, c: &[u8]| {
        let mut h = DefaultHasher::new();
        (k, c).hash(&mut h);
        h.finish()
    };
    Some((hash(kind, &content), hash(tkind, &tcontent)))
}
