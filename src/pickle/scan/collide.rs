//! Pass 1, key collisions: distinct dict keys / set members (py2 `str`, text, bytes) that would
//! become equal in the target runtime. Keys are recorded as slots; only containers that mix
//! kinds are decoded and hashed at the end.

use std::borrow::Cow;
use std::hash::{DefaultHasher, Hash, Hasher};

use super::super::compat::{self, ValueKey};

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
        let list = self
            .containers
            .get(c as usize)
            .is_some_and(|info| !info.keyed());
        if step == 1 && (!list || self.set_global_seen) {
            // Members of what may become a frozenset key (FROZENSET's items, or a list given to
            // `frozenset`, whose global comes first).
            let kept = self.members.entry(c).or_insert_with(|| Some(Vec::new()));
            if let Some(items) = kept {
                if items.len() + self.scratch.len() <= MAX_KEPT_MEMBERS {
                    items.extend_from_slice(&self.scratch);
                } else {
                    *kept = None;
                }
            }
        } else if step == 1 && !self.scratch.is_empty() {
            if let Some(info) = self.containers.get_mut(c as usize) {
                info.unkept = true;
            }
        }
        if list && !self.scratch.is_empty() {
            // What `OrderedDict([[key, value], ...])` needs (see `record_pair_keys`), kept for
            // every list: one may be filled before its class is named and fetched by a GET.
            self.list_first.entry(c).or_insert(self.scratch[0]);
            let firsts = self.pair_firsts_of(&self.scratch);
            if !firsts.is_empty() {
                self.pair_firsts.entry(c).or_default().extend(firsts);
            }
        }
        for i in (0..self.scratch.len()).step_by(step) {
            let slot = self.scratch[i];
            // Set and list items may be inside a composite key (see `digest`).
            let target = self.meet_bit(&slot);
            self.record_key(c, slot, target);
            if step == 2 && self.uuid_seen && is_int_key(self.src, &slot) {
                // What a UUID's state sets (see `note_uuid_state`).
                let value = self.scratch.get(i + 1).copied().unwrap_or_default();
                self.int_items.insert(c, value);
            }
        }
    }

    /// The `int` a BUILD sets on UUID object `id`: the value of its state dict's `int` key at
    /// that point (later changes to the dict do not reach the object), a number. Anything
    /// else (a state of another form, no number, a second BUILD) leaves the UUID without a
    /// value, judged like any object.
    pub(super) fn note_uuid_state(&mut self, id: u32, state: Slot) {
        let int = match state {
            Slot::Container(c) => self
                .int_items
                .get(&c)
                .copied()
                .filter(|v| matches!(v, Slot::Scalar { .. })),
            _ => None,
        };
        self.uuid_ints
            .entry(id)
            .and_modify(|seen| *seen = None)
            .or_insert(int);
    }

    /// One key (or member) of container `c`: a str-like one with its kind (and `target`, its
    /// `meet_bit`), or a composite one (a tuple, frozenset, object or global) for
    /// `check_composite_keys`; anything else cannot meet another key.
    fn record_key(&mut self, c: u32, slot: Slot, target: u8) {
        if let Some(kind) = key_kind(&slot) {
            if let Some(info) = self.containers.get_mut(c as usize) {
                info.kinds |= 1 << kind;
                info.target_kinds |= target;
            }
            self.keys.push(KeyRec { container: c, slot });
        } else if matches!(
            slot,
            Slot::Tuple(..)
                | Slot::Container(_)
                | Slot::OpenSet(_)
                | Slot::Object(_)
                | Slot::Global { .. }
        ) {
            self.composite_keys.push(KeyRec { container: c, slot });
        }
    }

    /// Keeps a tuple's items for the collision check (only with a policy); its id.
    pub(super) fn keep_tuple(&mut self, items: &[Slot]) -> u32 {
        // Without a policy only pairs are kept, for `getattr(Class, 'NAME')` (`walks.rs`).
        if self.policy.is_none() && items.len() > 2 {
            return u32::MAX;
        }
        let (Ok(start), Ok(len), Ok(id)) = (
            u32::try_from(self.tuple_items.len()),
            u32::try_from(items.len()),
            u32::try_from(self.tuple_spans.len()),
        ) else {
            return u32::MAX;
        };
        self.tuple_items.extend_from_slice(items);
        self.tuple_spans.push((start, len));
        id
    }

    /// The items [`Scanner::keep_tuple`] kept for tuple `id`.
    pub(super) fn tuple_items(&self, id: u32) -> Option<&[Slot]> {
        let &(start, len) = self.tuple_spans.get(id as usize)?;
        self.tuple_items
            .get(start as usize..start as usize + len as usize)
    }

    /// Tuple and frozenset keys of one dict or set that would become equal in the target:
    /// compared by a digest of their items (strings by kind and content as `key_hashes` sees
    /// them, numbers/None/bools by value (see `scalar_key`), nested tuples and frozensets
    /// recursively). A key holding anything else (an object, a frozenset of more than
    /// [`MAX_KEPT_MEMBERS`]) has no digest: when the strings inside the container's composite
    /// keys are of two kinds that could meet in the target, the value is refused rather than
    /// maybe merged. An object key is such a key, and its strings are those of its arguments:
    /// a namedtuple or a `tuple` subclass compares by them, and a `str`, `bytes` or `unicode`
    /// subclass equals a plain string key (`{MyText(u'\xe9'): 1, '\xc3\xa9': 2}`, two keys
    /// in Python 2, one in Python 3), so the plain string keys of its container count too.
    /// (An object's state, set by BUILD, is not looked into: a class whose own `__eq__`
    /// compares attributes is beyond what the pickle says.) A global (a class or function as a
    /// key) is digested by its name as spelled and as the reader looks it up, so two that the
    /// reader takes as one are refused, also in a value without strings of two kinds.
    fn check_composite_keys(
        &self,
        policy: &Policy,
        hashes: &mut KeyHashes,
    ) -> Result<(), TranscodeError> {
        // Keys distinct in the source only become equal through strings of two kinds (each
        // kind's own conversion is one-to-one). A py2 `str` that changes form for a Python 3
        // reader counts as one more kind, as a second transcode of the rewrite would see it
        // (the fast path counts the same way).
        let converted = policy.target == Runtime::Py3 && !self.py2_str_changes.is_empty();
        let kinds = [self.has_py2_str, self.has_text, self.has_bytes, converted];
        let collision = || TranscodeError::new(ErrorKind::Collision, 0, None);
        if self.composite_keys.is_empty() {
            return Ok(());
        }
        if policy.target == Runtime::Py3 && self.numbers_meet() {
            return Err(collision());
        }
        // Without strings of two kinds, composite keys still meet through two globals the
        // reader takes as one (`(str,)` and `(unicode,)`).
        if kinds.iter().filter(|&&k| k).count() < 2 && !self.globals_meet_in_reader(policy) {
            return Ok(());
        }
        // Digest steps per value: shared sub-tuples (memo GETs) could otherwise make the walk
        // exponential; past the budget a key has no digest.
        let mut walk = Walk {
            budget: MAX_DIGEST_STEPS,
            hashes,
        };
        let mut digests: Vec<(u32, u64, u64)> = Vec::new();
        // Per container: composite keys, the strings' kinds inside them (`meet_bit`), one
        // without a digest, an object.
        let mut per: HashMap<u32, (usize, u8, bool, bool)> = HashMap::new();
        // Lists are never keys or members in a value that loads (a dict or set given them is
        // only made by hand): they are left out, as the fast path leaves them.
        let list = |s: &Slot| matches!(*s, Slot::Container(c) if !self.keyed(c));
        // An object of a class `compat::value_key` knows equals no string, tuple or frozenset,
        // and its own kind by a value the conversion keeps: it cannot meet another key.
        let value = |s: &Slot| matches!(*s, Slot::Object(id) if self.value_key(id).is_some());
        for k in self
            .composite_keys
            .iter()
            .filter(|k| self.keyed(k.container) && !list(&k.slot) && !value(&k.slot))
        {
            let mut kinds = 0u8;
            let d = self.digest(&k.slot, policy, 0, &mut kinds, &mut walk);
            let object = matches!(k.slot, Slot::Object(_));
            let e = per.entry(k.container).or_insert((0, 0, false, false));
            *e = (e.0 + 1, e.1 | kinds, e.2 || d.is_none(), e.3 || object);
            if let Some((s, t)) = d {
                digests.push((k.container, t, s));
            }
        }
        // An object may equal a plain string key of its container.
        for k in &self.keys {
            if let Some(e) = per.get_mut(&k.container).filter(|e| e.3) {
                e.0 += 1;
                e.1 |= self.meet_bit(&k.slot);
            }
        }
        // Strings of two kinds that can be equal in one runtime and not the other: for Python 2,
        // bytes next to a py2 `str` or text (bytes become `str`: `b'a'` and `'a'` merge, and
        // `b'a'` and `u'a'`, as `'a' == u'a'`), and under `py2_text = utf8` any two (text
        // becomes `str` too); under `keep` a py2 `str` and text stay what Python 2 wrote, equal
        // or not as they were (a value Python 2 wrote, read by Python 2, is never refused for
        // them). For Python 3, two of text and a py2 `str` kept or made text, or a py2 `str`
        // made bytes next to bytes (merged) or text (equal in Python 2, `'qq' == u'qq'`, split
        // in Python 3) (see `meet_bit`).
        let meet = |k: u8| match policy.target {
            Runtime::Py2 if policy.py2_text == Py2Text::Keep => k & 0b100 != 0 && k & 0b011 != 0,
            Runtime::Py2 => (k & 0b111).count_ones() >= 2,
            Runtime::Py3 => {
                (k & 0b1_0011).count_ones() >= 2 || (k & 0b1000 != 0 && k & 0b0110 != 0)
            }
        };
        // Past the budget the kinds seen may be incomplete: any kinds could meet.
        let exhausted = walk.budget == 0;
        if per
            .values()
            .any(|&(n, kinds, unknown, _)| unknown && n >= 2 && (exhausted || meet(kinds)))
        {
            return Err(collision());
        }
        if collide(&mut digests) {
            return Err(collision());
        }
        Ok(())
    }

    /// The digests of `items`, or `None` when one has none (every item's strings still go to
    /// `kinds`).
    fn digests(
        &self,
        items: &[Slot],
        policy: &Policy,
        depth: u32,
        kinds: &mut u8,
        walk: &mut Walk<'_>,
    ) -> Option<Vec<(u64, u64)>> {
        let mut parts = Vec::with_capacity(items.len());
        let mut known = true;
        for item in items {
            match self.digest(item, policy, depth, kinds, walk) {
                Some(p) => parts.push(p),
                None => known = false,
            }
        }
        known.then_some(parts)
    }

    /// (source digest, target digest) of a composite key's item; `kinds` collects the strings
    /// met, as [`Scanner::meet_bit`] tells them apart. `None`: an item without a digest.
    fn digest(
        &self,
        slot: &Slot,
        policy: &Policy,
        depth: u32,
        kinds: &mut u8,
        walk: &mut Walk<'_>,
    ) -> Option<(u64, u64)> {
        walk.budget = walk.budget.checked_sub(1)?;
        match *slot {
            Slot::Py2Str { .. }
            | Slot::Text { .. }
            | Slot::Bytes { .. }
            | Slot::CodecsBytes { .. }
            | Slot::EmptyBytes => {
                *kinds |= self.meet_bit(slot);
                walk.hashes.get(self.src, slot, policy)
            }
            Slot::Scalar { pos } => {
                let o = self.op_at(pos)?;
                let mut h = DefaultHasher::new();
                // Its own first byte: no string's or container's hash starts with it (a string
                // hashes its kind first: 0-2, b's', b'u' or b'b').
                (b'#', scalar_key(&o)?).hash(&mut h);
                let h = h.finish();
                Some((h, h))
            }
            Slot::EmptyTuple { .. } => Some(mix(b't', &[])),
            Slot::Tuple(_, id) if depth < 32 => {
                let items = self.tuple_items(id)?;
                let parts = self.digests(items, policy, depth + 1, kinds, walk)?;
                Some(mix(b't', &parts))
            }
            // A frozenset: its members' digests, in no order. One whose items were not all kept
            // has none, and neither has a list inside a key (a value only made by hand).
            Slot::Container(c) if depth < 32 => {
                let info = self.containers.get(c as usize)?;
                *kinds |= info.target_kinds;
                if !info.keyed() || info.unkept {
                    return None;
                }
                // No items kept: an empty one (nothing was ever added).
                let items = match self.members.get(&c) {
                    Some(kept) => kept.as_deref()?,
                    None => &[],
                };
                let parts = self.digests(items, policy, depth + 1, kinds, walk)?;
                let mut src: Vec<u64> = parts.iter().map(|p| p.0).collect();
                let mut tgt: Vec<u64> = parts.iter().map(|p| p.1).collect();
                src.sort_unstable();
                src.dedup();
                tgt.sort_unstable();
                tgt.dedup();
                let (mut s, mut t) = (DefaultHasher::new(), DefaultHasher::new());
                (b'f', &src).hash(&mut s);
                (b'f', &tgt).hash(&mut t);
                Some((s.finish(), t.finish()))
            }
            // An object of a class `compat::value_key` knows that equals only its own kind: a
            // digest of its class and value, whose strings are no kinds that could meet. A naive
            // `date`, `time` or `datetime` by its state's bytes (fold cleared: it takes no part
            // in `==`, and Python 2 gets it cleared); a `timedelta` by its numbers; a UUID by
            // the `int` its BUILD state set (`note_uuid_state`; none without one). Numbers
            // (`Decimal`, ...) equal other numbers, and an aware
            // `datetime` others of one instant: like any object, they have none.
            Slot::Object(id) if depth < 32 && self.value_key(id).is_some() => {
                let rec = *self.objects.get(id as usize)?;
                let mut g = self.globals.get(rec.class? as usize)?;
                let items = match rec.args {
                    Slot::Tuple(_, t) => self.tuple_items(t)?,
                    _ => &[],
                };
                let value = match (self.value_key(id)?, items) {
                    // By the `int` of its state: made by NEWOBJ of the class, or by
                    // `copy_reg._reconstructor(UUID, object, None)`.
                    (ValueKey::Uuid, _) => {
                        if let (true, &[Slot::Global { idx, .. }, ..]) = (g.reconstructor, items) {
                            g = self.globals.get(idx as usize)?;
                        }
                        let int = self.uuid_ints.get(&id).copied().flatten()?;
                        self.digest(&int, policy, depth + 1, &mut 0, walk)?
                    }
                    (ValueKey::State, &[state]) => {
                        // Not text (see `value_key`): the bytes both runtimes build it from.
                        let (_, mut bytes) = str_content(self.src, &state)?;
                        let fold = match bytes.len() {
                            10 => 2,
                            6 => 0,
                            _ => bytes.len(),
                        };
                        if let Some(b) = bytes.get_mut(fold) {
                            *b &= 0x7f;
                        }
                        let mut h = DefaultHasher::new();
                        (b'd', &bytes).hash(&mut h);
                        let h = h.finish();
                        (h, h)
                    }
                    (ValueKey::Plain, _) => {
                        self.digest(&rec.args, policy, depth + 1, &mut 0, walk)?
                    }
                    _ => {
                        let _ = self.digest(&rec.args, policy, depth + 1, kinds, walk);
                        return None;
                    }
                };
                Some(value_digest(&g.module, &g.name, value))
            }
            // A class or function: by its name as spelled, and as the reader looks it up
            // (`(str,)` and `(unicode,)` are one key in Python 3).
            Slot::Global { idx, .. } => {
                let g = self.globals.get(idx as usize)?;
                let (m, n) = self.reader_name(g, policy);
                let (mut s, mut t) = (DefaultHasher::new(), DefaultHasher::new());
                (b'g', &*g.module, &*g.name).hash(&mut s);
                (b'g', &*m, &*n).hash(&mut t);
                Some((s.finish(), t.finish()))
            }
            // `timedelta(0, 0, 0)` as the scan marks it under `py2_utc = pytz` (see `utc.rs`):
            // digested as that object is above.
            Slot::ZeroDelta => {
                let mut zero = DefaultHasher::new();
                (b'#', ScalarKey::int(false, &[])).hash(&mut zero);
                let zero = zero.finish();
                let args = mix(b't', &[(zero, zero); 3]);
                Some(value_digest("datetime", "timedelta", args))
            }
            // Any other object: no digest (it may compare by identity, by its arguments, or as
            // a string), and the strings of its arguments count.
            Slot::Object(id) if depth < 32 => {
                let args = self.objects.get(id as usize)?.args;
                let _ = self.digest(&args, policy, depth + 1, kinds, walk);
                None
            }
            // A set being built for a Python 2 reader, as a key or member (unhashable: only a
            // value made by hand has one): no digest, and the strings' kinds inside it count,
            // as they do once it is written as `set([...])`.
            Slot::OpenSet(set) => {
                let c = self.sets.get(set as usize)?.container;
                let _ = self.digest(&Slot::Container(c), policy, depth, kinds, walk);
                None
            }
            _ => None,
        }
    }

    /// Whether container `c` is a dict or set (see `ContainerInfo::keyed`).
    fn keyed(&self, c: u32) -> bool {
        self.containers
            .get(c as usize)
            .is_some_and(|info| info.keyed())
    }

    /// What object `id` is as a key, if its class is one [`compat::value_key`] knows and its
    /// arguments are what that class's pickles hold: a `datetime` state that is not text (only
    /// a hand-made one is, and `py2_text = utf8` would change its bytes); a UUID built by
    /// `copy_reg._reconstructor(UUID, object, None)` (Python 2's protocols 0 and 1).
    pub(super) fn value_key(&self, id: u32) -> Option<ValueKey> {
        let rec = self.objects.get(id as usize)?;
        let g = self.globals.get(rec.class? as usize)?;
        let items = match rec.args {
            Slot::Tuple(_, t) => self.tuple_items(t)?,
            Slot::EmptyTuple { .. } => &[],
            _ => return None,
        };
        if g.reconstructor {
            let Some(&Slot::Global { idx, .. }) = items.first() else {
                return None;
            };
            let key = self.globals.get(idx as usize)?.value_key;
            return key.filter(|&k| k == ValueKey::Uuid);
        }
        match (g.value_key?, items.first()) {
            // An aware one (a tzinfo argument), for a Python 2 reader, only with a tzinfo whose
            // offset does not depend on fold (pytz's, and `timezone.utc` made `pytz.utc`):
            // Python 3 finds datetimes of two zones unequal when an offset depends on fold
            // (PEP 495), where Python 2 compares their instants.
            (ValueKey::State, Some(_))
                if items.len() > 1
                    && self.target() == Some(Runtime::Py2)
                    && !items[1..].iter().all(|tz| self.fold_free_tzinfo(tz)) =>
            {
                None
            }
            (
                ValueKey::State,
                Some(
                    Slot::Py2Str { .. }
                    | Slot::Bytes { .. }
                    | Slot::CodecsBytes { .. }
                    | Slot::EmptyBytes,
                ),
            ) => Some(ValueKey::State),
            (ValueKey::State, _) => None,
            (key, _) => Some(key),
        }
    }

    /// Whether two of the value's globals are one name for the reader (see `reader_name`).
    fn globals_meet_in_reader(&self, policy: &Policy) -> bool {
        if self.globals.len() < 2 {
            return false;
        }
        let mut names: Vec<(Cow<'_, str>, Cow<'_, str>)> = self
            .globals
            .iter()
            .map(|g| self.reader_name(g, policy))
            .collect();
        names.sort_unstable();
        // Interned globals are distinct spellings: an equal pair is two of them.
        names.windows(2).any(|w| w[0] == w[1])
    }

    /// The name the reader looks global `g` up as: CPython 3's renaming for a Python 2 reader,
    /// Python 3's `fix_imports` mapping at protocols 0-2 for a Python 3 reader.
    fn reader_name<'g>(&self, g: &'g GlobalInfo, policy: &Policy) -> (Cow<'g, str>, Cow<'g, str>) {
        match policy.target {
            Runtime::Py2 => compat::py3_to_py2(&g.module, &g.name),
            Runtime::Py3 if self.summary.declared_protocol.map_or(true, |d| d < 3) => {
                compat::py2_to_py3(&g.module, &g.name)
            }
            Runtime::Py3 => (Cow::Borrowed(&*g.module), Cow::Borrowed(&*g.name)),
        }
    }

    /// Whether a tzinfo argument is one whose offset does not depend on `fold`: `pytz.utc` (made
    /// from `timezone.utc` under `py2_utc = pytz`, or written so) and pytz's zones, which
    /// predate PEP 495 (`pytz._UTC()`, `pytz._p(...)`).
    fn fold_free_tzinfo(&self, tz: &Slot) -> bool {
        let class = match *tz {
            Slot::Utc => return true,
            Slot::Object(id) => self.objects.get(id as usize).and_then(|o| o.class),
            _ => None,
        };
        class
            .and_then(|c| self.globals.get(c as usize))
            .is_some_and(|g| matches!((&*g.module, &*g.name), ("pytz", "_UTC" | "_p")))
    }

    /// Whether a Python 3 reader's dict or set holds a `Decimal` key and a `Fraction` or
    /// `complex` key (or tuple or frozenset keys holding them): Python 3 finds such numbers of
    /// one value equal, and hashes them alike, where Python 2 holds two keys
    /// (`{Decimal('1.5'): 1, Fraction(3, 2): 2}`), whatever the strings.
    fn numbers_meet(&self) -> bool {
        let named = |k: ValueKey| self.globals.iter().any(|g| g.value_key == Some(k));
        if !named(ValueKey::Decimal) || !named(ValueKey::Number) {
            return false;
        }
        let mut budget = MAX_DIGEST_STEPS;
        let mut per: HashMap<u32, u8> = HashMap::new();
        // The keys of dicts and sets only (lists' items are recorded too).
        for k in self
            .composite_keys
            .iter()
            .filter(|k| self.keyed(k.container))
        {
            let bits = self.number_bits(&k.slot, 0, &mut budget);
            let e = per.entry(k.container).or_default();
            *e |= bits;
            if *e == 0b11 {
                return true;
            }
        }
        false
    }

    /// `Decimal` (bit 0) and `Fraction` or `complex` (bit 1) objects in a key, nested ones
    /// included; both bits past the step budget.
    fn number_bits(&self, slot: &Slot, depth: u32, budget: &mut u32) -> u8 {
        let Some(left) = budget.checked_sub(1) else {
            return 0b11;
        };
        *budget = left;
        if depth >= 32 {
            return 0b11;
        }
        let items = match *slot {
            Slot::Object(id) => match self.value_key(id) {
                Some(ValueKey::Decimal) => return 0b01,
                Some(ValueKey::Number) => return 0b10,
                Some(_) => return 0,
                // Another object may compare by its arguments (a namedtuple).
                None => match self.objects.get(id as usize) {
                    Some(rec) => return self.number_bits(&rec.args, depth + 1, budget),
                    None => return 0,
                },
            },
            Slot::Tuple(_, id) => self.tuple_items(id),
            // A frozenset whose members were not all kept may hold any.
            Slot::Container(c) => match self.members.get(&c) {
                Some(Some(kept)) => Some(&kept[..]),
                Some(None) => return 0b11,
                None => None,
            },
            _ => None,
        };
        items.unwrap_or_default().iter().fold(0, |bits, item| {
            bits | self.number_bits(item, depth + 1, budget)
        })
    }

    /// The first items of the lists and tuples among `items` (the keys, if they are pairs).
    fn pair_firsts_of(&self, items: &[Slot]) -> Vec<Slot> {
        items
            .iter()
            .filter_map(|slot| match *slot {
                Slot::Container(child) => self.list_first.get(&child).copied(),
                Slot::Tuple(_, id) => self.tuple_items(id)?.first().copied(),
                _ => None,
            })
            .collect()
    }

    /// A tuple handed alone to a class that may make a set or dict of it: its items are the
    /// members of one more keyed container, and the first items of its pairs the keys of
    /// another.
    pub(super) fn record_tuple_members(&mut self, tuple: u32) {
        let Some(items) = self.tuple_items(tuple).map(<[Slot]>::to_vec) else {
            return;
        };
        let c = self.new_container(Made::Set);
        let firsts = self.pair_firsts_of(&items);
        let scratch = std::mem::replace(&mut self.scratch, items);
        self.record_keys(c, 1);
        self.scratch = scratch;
        self.record_firsts(firsts);
    }

    /// `collections.OrderedDict(pairs)`: the first items of the lists and tuples in list
    /// `pairs` are the keys of one more keyed container.
    pub(super) fn record_pair_keys(&mut self, pairs: u32) {
        if self.policy.is_none() {
            return;
        }
        let firsts = self.pair_firsts.get(&pairs).cloned().unwrap_or_default();
        self.record_firsts(firsts);
    }

    /// Keys (the first items of pairs) of one more keyed container.
    fn record_firsts(&mut self, firsts: Vec<Slot>) {
        let c = self.new_container(Made::Object);
        for slot in firsts {
            self.record_key(c, slot, 0);
        }
    }

    /// Distinct keys can only become equal when one container mixes kinds (py2 str, text,
    /// bytes): only those keys are decoded and hashed.
    pub(super) fn check_collisions(&mut self) -> Result<(), TranscodeError> {
        let Some(policy) = self.policy else {
            return Ok(());
        };
        // `py2_text = utf8` leaves what Python 2 wrote as it is: its text keys stay `unicode`,
        // and are judged so.
        let kept;
        let policy = if policy.target == Runtime::Py2
            && policy.py2_text == Py2Text::Utf8
            && !policy.utf8_text_for(self.summary.writer)
        {
            kept = Policy {
                py2_text: Py2Text::Keep,
                ..policy.clone()
            };
            &kept
        } else {
            policy
        };
        let mut hashes = KeyHashes::default();
        self.check_composite_keys(policy, &mut hashes)?;
        let containers = &self.containers;
        let mixed = |c: u32| {
            containers
                .get(c as usize)
                .is_some_and(|info| info.keyed() && info.kinds.count_ones() >= 2)
        };
        let mut hashed: Vec<(u32, u64, u64)> = self
            .keys
            .iter()
            .filter(|k| mixed(k.container))
            .filter_map(|k| {
                let (s, t) = hashes.get(self.src, &k.slot, policy)?;
                Some((k.container, t, s))
            })
            .collect();
        if collide(&mut hashed) {
            return Err(TranscodeError::new(ErrorKind::Collision, 0, None));
        }
        Ok(())
    }
}

/// Whether two keys of one container, as `(container, target digest, source digest)`, are
/// equal on one side and not the other: distinct keys that would become one in the target
/// (merged there), or keys the source runtime holds as one that the target would hold as two
/// (`'a'` and `u'a'` of a hand-made Python 2 dict, which Python 2 loads as one key, written as
/// `b'a'` and `'a'` under `py3_str = bytes`).
fn collide(keys: &mut [(u32, u64, u64)]) -> bool {
    keys.sort_unstable();
    let merged = keys
        .windows(2)
        .any(|w| w[0].0 == w[1].0 && w[0].1 == w[1].1 && w[0].2 != w[1].2);
    keys.sort_unstable_by_key(|&(c, t, s)| (c, s, t));
    merged
        || keys
            .windows(2)
            .any(|w| w[0].0 == w[1].0 && w[0].2 == w[1].2 && w[0].1 != w[1].1)
}

/// A number, None or bool as a key item in either runtime: numbers that compare equal are one
/// key whatever their ops (`1`, `1L`, `True`, `I01`, `1.0`, a LONG1 with a redundant sign
/// byte, `L<digits>L` and LONG1 of the same big number), and `-0.0` is `0`. `None` where it
/// cannot say: NaN (equal only to itself, as the same object) and decimal lines of more than
/// [`MAX_KEY_DIGITS`] digits (such a key has no digest).
fn scalar_key(o: &Op<'_>) -> Option<ScalarKey> {
    let line = || std::str::from_utf8(o.arg).ok();
    match o.code {
        op::NONE => Some(ScalarKey::None),
        op::NEWTRUE => Some(ScalarKey::int(false, &[1])),
        op::NEWFALSE => Some(ScalarKey::int(false, &[])),
        op::BININT | op::BININT1 | op::BININT2 => {
            let v = o.uint();
            Some(ScalarKey::int(v < 0, &v.unsigned_abs().to_le_bytes()))
        }
        // `I01` / `I00` are True / False: equal to 1 / 0 as keys.
        op::INT => ScalarKey::decimal(line()?),
        op::LONG => {
            let l = line()?;
            ScalarKey::decimal(l.strip_suffix('L').unwrap_or(l))
        }
        op::LONG1 => {
            // Little-endian two's complement: the magnitude of a negative one is its negation.
            let b = o.arg;
            if b.last().is_some_and(|&top| top & 0x80 != 0) {
                let mut mag: Vec<u8> = b.iter().map(|&x| !x).collect();
                for x in &mut mag {
                    let (v, carry) = x.overflowing_add(1);
                    *x = v;
                    if !carry {
                        break;
                    }
                }
                Some(ScalarKey::int(true, &mag))
            } else {
                Some(ScalarKey::int(false, b))
            }
        }
        op::FLOAT => ScalarKey::float(line()?.parse::<f64>().ok()?),
        op::BINFLOAT => ScalarKey::float(f64::from_be_bytes(o.arg.try_into().ok()?)),
        _ => None,
    }
}

/// Longest decimal line (INT, LONG) read as a key's number.
const MAX_KEY_DIGITS: usize = 4096;

/// A key's number, None or bool, by value (see [`scalar_key`]).
#[derive(Hash)]
enum ScalarKey {
    None,
    /// An integer (bools and integral floats too): sign and magnitude, little-endian without
    /// high zero bytes (zero is never negative).
    Int(bool, Vec<u8>),
    /// A float that is not an integer (or infinite): its bits.
    Float(u64),
}

impl ScalarKey {
    fn int(negative: bool, magnitude: &[u8]) -> ScalarKey {
        let len = magnitude.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        ScalarKey::Int(negative && len > 0, magnitude[..len].to_vec())
    }

    /// `-?[0-9]+`, as the reader has checked INT and LONG lines.
    fn decimal(line: &str) -> Option<ScalarKey> {
        let (negative, digits) = match line.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, line),
        };
        if digits.is_empty() || digits.len() > MAX_KEY_DIGITS {
            return None;
        }
        // Base 2^32 limbs, little-endian: times ten plus the digit, per digit.
        let mut limbs: Vec<u32> = Vec::new();
        for d in digits.bytes() {
            let mut carry = u64::from(d.checked_sub(b'0').filter(|&d| d < 10)?);
            for limb in &mut limbs {
                let v = u64::from(*limb) * 10 + carry;
                *limb = v as u32;
                carry = v >> 32;
            }
            if carry > 0 {
                limbs.push(carry as u32);
            }
        }
        let bytes: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
        Some(ScalarKey::int(negative, &bytes))
    }

    fn float(f: f64) -> Option<ScalarKey> {
        if f.is_nan() {
            return None;
        }
        if !f.is_finite() || f.fract() != 0.0 {
            return Some(ScalarKey::Float(f.to_bits()));
        }
        // An integer: mantissa times 2^exponent, exactly (zero and subnormals have no fraction
        // only when zero).
        let bits = f.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i64;
        if exp == 0 {
            return Some(ScalarKey::int(false, &[]));
        }
        let mantissa = (bits & ((1 << 52) - 1)) | (1 << 52);
        let shift = exp - 1075;
        let mut mag = Vec::new();
        if shift <= 0 {
            mag.extend_from_slice(&(mantissa >> (-shift)).to_le_bytes());
        } else {
            let shift = shift as usize;
            mag.resize(shift / 8, 0);
            let wide = u128::from(mantissa) << (shift % 8);
            mag.extend_from_slice(&wide.to_le_bytes());
        }
        Some(ScalarKey::int(f < 0.0, &mag))
    }
}

/// Digest steps per value for tuple and frozenset keys.
const MAX_DIGEST_STEPS: u32 = 1 << 20;

/// The digest walk's state: steps left, and the string hashes met so far.
struct Walk<'h> {
    budget: u32,
    hashes: &'h mut KeyHashes,
}

/// [`key_hashes`] of each str-like op, computed once per value: a long key fetched from the
/// memo many times (as keys of many dicts, or inside many tuple keys) would otherwise be decoded
/// and hashed each time, seconds of work for a value under a megabyte.
#[derive(Default)]
struct KeyHashes(HashMap<(usize, u8), Option<(u64, u64)>>);

impl KeyHashes {
    fn get(&mut self, src: &[u8], slot: &Slot, policy: &Policy) -> Option<(u64, u64)> {
        let id = match *slot {
            Slot::Py2Str { src: p, .. } => (p, 0),
            Slot::Text { src: p, .. } => (p, 1),
            Slot::Bytes { src: p } => (p, 2),
            Slot::CodecsBytes { src: p } => (p, 3),
            _ => return key_hashes(src, slot, policy),
        };
        *self
            .0
            .entry(id)
            .or_insert_with(|| key_hashes(src, slot, policy))
    }
}

/// The source kind of a str-like key: 0 py2 `str`, 1 text, 2 bytes; `None` for other values.
pub(super) fn key_kind(slot: &Slot) -> Option<u8> {
    match slot {
        Slot::Py2Str { .. } => Some(0),
        Slot::Text { .. } => Some(1),
        Slot::Bytes { .. } | Slot::CodecsBytes { .. } | Slot::EmptyBytes => Some(2),
        _ => None,
    }
}

impl Scanner<'_, '_> {
    /// The kind (as `key_kind` numbers them) a py2 `str` takes for a Python 3 reader: kept
    /// (ASCII), text or bytes, as the policy writes it; `None` for anything else (its kind
    /// stays). What a rewrite writes is what a second transcode of it sees, so a composite key
    /// is judged the same both times.
    fn target_kind(&self, slot: &Slot) -> Option<u8> {
        let (Slot::Py2Str { src: p, .. }, Some(policy)) = (*slot, self.policy) else {
            return None;
        };
        if policy.target != Runtime::Py3 {
            return None;
        }
        let form = || {
            let bytes = strings::py2_str_bytes(&self.op_at(p)?)?;
            Some(match strings::py3_form(&bytes, policy.py3_str) {
                Py3Form::Keep => 0,
                Py3Form::Text(_) => 1,
                Py3Form::Bytes => 2,
            })
        };
        *self.target_kinds.borrow_mut().entry(p).or_insert_with(form)
    }

    /// A string's bit for telling whether the strings inside keys without a digest could meet
    /// in the target: for a Python 2 reader, py2 `str`, text and bytes (bits 0-2); for a
    /// Python 3 reader, a py2 `str` kept (bit 0), made text (bit 4) or made bytes (bit 3),
    /// text (bit 1) and bytes (bit 2). Text a py2 `str` becomes and text Python 2 wrote are
    /// told apart: `('\xc3\xa9', obj)` and `(u'\xe9', obj)` are two keys in Python 2 and one
    /// in Python 3. A kept and a converted py2 `str` cannot meet, but a second transcode of
    /// the rewrite sees text and a py2 `str` there: they count as two kinds, so both
    /// transcodes judge alike. 0 for anything else.
    fn meet_bit(&self, slot: &Slot) -> u8 {
        let Some(kind) = key_kind(slot) else {
            return 0;
        };
        match self.target_kind(slot) {
            Some(0) => 0b0_0001,
            Some(1) => 0b1_0000,
            Some(_) => 0b0_1000,
            None => 1 << kind,
        }
    }
}

/// (source, target) digest of a composite key from its parts' digests, under `tag`.
fn mix(tag: u8, parts: &[(u64, u64)]) -> (u64, u64) {
    let (mut s, mut t) = (DefaultHasher::new(), DefaultHasher::new());
    (tag, parts.len()).hash(&mut s);
    (tag, parts.len()).hash(&mut t);
    for p in parts {
        p.0.hash(&mut s);
        p.1.hash(&mut t);
    }
    (s.finish(), t.finish())
}

/// The digest of an object of a class `compat::value_key` knows: its class and its value's
/// digest (see `Scanner::digest`).
fn value_digest(module: &str, name: &str, value: (u64, u64)) -> (u64, u64) {
    let mut class = DefaultHasher::new();
    (module, name).hash(&mut class);
    let class = class.finish();
    mix(b'o', &[(class, class), value])
}

/// Whether a dict key is the string `int` (a py2 `str` or text: either sets the attribute).
fn is_int_key(src: &[u8], slot: &Slot) -> bool {
    let (Slot::Py2Str { src: p, .. } | Slot::Text { src: p, .. }) = *slot else {
        return false;
    };
    let Some(Ok(o)) = Reader::new(src.get(p..).unwrap_or_default()).next() else {
        return false;
    };
    // Short ops only: `'int'` with its quotes is the longest spelling, and a long key is not
    // decoded to be compared.
    o.arg.len() <= 5
        && match slot {
            Slot::Py2Str { .. } => strings::py2_str_bytes(&o).is_some_and(|b| *b == *b"int"),
            _ => strings::text_utf8(&o).is_some_and(|t| t == "int"),
        }
}

/// The source kind (0 py2 str, 1 text, 2 bytes) and content (text as UTF-8) of a str-like
/// slot; `None` for anything else.
fn str_content(src: &[u8], slot: &Slot) -> Option<(u8, Vec<u8>)> {
    let at = |pos: usize| Reader::new(src.get(pos..)?).next()?.ok();
    Some(match *slot {
        Slot::Py2Str { src: p, .. } => (0, strings::py2_str_bytes(&at(p)?)?.into_owned()),
        Slot::Text { src: p, .. } => (1, strings::text_utf8(&at(p)?)?.as_bytes().to_vec()),
        Slot::Bytes { src: p } => (2, at(p)?.arg.to_vec()),
        Slot::CodecsBytes { src: p } => {
            let text = strings::text_utf8(&at(p)?)?;
            let bytes: Option<Vec<u8>> = text
                .chars()
                .map(|c| u8::try_from(u32::from(c)).ok())
                .collect();
            (2, bytes?)
        }
        Slot::EmptyBytes => (2, Vec::new()),
        _ => return None,
    })
}

/// Hashes of a str-like key as the source runtime sees it and as the target will.
fn key_hashes(src: &[u8], slot: &Slot, policy: &Policy) -> Option<(u64, u64)> {
    let (kind, content) = str_content(src, slot)?;
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
    // In Python 2 an ASCII `str` equals the `unicode` of the same text: one key there.
    let skind = if kind == 0 && content.is_ascii() {
        1
    } else {
        kind
    };
    Some((hash(skind, &content), hash(tkind, &tcontent)))
}
