//! Pass 1, the ops whose meaning depends on what they call: GLOBAL/INST/STACK_GLOBAL (globals
//! table, renames, py3-only check), REDUCE (binary state, text arguments, `set(list)`), BUILD
//! (attribute names), NEWOBJ and `copy_reg._reconstructor` (classic classes).

use std::borrow::Cow;

use super::*;

impl<'a, 'p> Scanner<'a, 'p> {
    pub(super) fn global_op(&mut self, o: &Op<'a>) -> Result<(), TranscodeError> {
        let (m, n) = o
            .global_pair()
            .ok_or_else(|| self.m.err(ErrorKind::BadArgument))?;
        let (m, n) = match (std::str::from_utf8(m), std::str::from_utf8(n)) {
            (Ok(m), Ok(n)) => (m, n),
            _ => return Err(self.m.err(ErrorKind::BadArgument)),
        };
        let idx = self.intern_global(m, n)?;
        self.global_pushed(idx);
        if o.code == op::INST {
            self.ev_py2 = true;
            let args = self.mark_tuple(0, o.pos)?;
            self.pop_mark()?;
            let result = self.object(args, Some(idx));
            self.m.push(result)
        } else {
            self.m.push(Slot::Global { idx, via: o.pos })
        }
    }

    pub(super) fn stack_global(&mut self, o: &Op<'a>) -> Result<(), TranscodeError> {
        let name = self.m.pop()?;
        let module = self.m.pop()?;
        let (Slot::Text { src: ms, via: mv }, Slot::Text { src: ns, via: nv }) = (module, name)
        else {
            // Python 3 also takes py2 `str` ops (decoded as ASCII) here; anything else is a
            // string computed at load time: listed as the computed-global sentinel.
            let (m, n) = (self.str_of(&module), self.str_of(&name));
            let idx = match (m, n) {
                (Some(m), Some(n)) => self.intern_global(&m, &n)?,
                _ => self.intern_global(COMPUTED_GLOBAL.0, COMPUTED_GLOBAL.1)?,
            };
            self.global_pushed(idx);
            if self.target() == Some(Runtime::Py2) {
                return Err(self.m.err(ErrorKind::Unsupported));
            }
            // A py2 `str` module or name stays `str` under `py3_str = bytes` (as `bytes`,
            // Python 3 could not look the global up, and the firewall could not name it).
            if self.keeps_matter() == Some(Runtime::Py3) {
                for slot in [module, name] {
                    if let Slot::Py2Str { src, via } = slot {
                        self.kept_uses.push((src, via));
                    }
                }
            }
            return self.m.push(Slot::Global { idx, via: o.pos });
        };
        let (Some(m), Some(n)) = (self.text_at(ms), self.text_at(ns)) else {
            return Err(self.m.err(ErrorKind::BadArgument));
        };
        let idx = self.intern_global(&m, &n)?;
        self.global_pushed(idx);
        if self.target() == Some(Runtime::Py2) {
            // Only the adjacent form CPython writes (module, name, STACK_GLOBAL, memo PUTs between).
            if self.recent[RECENT - 2..] != [mv, nv] {
                return Err(self.m.err(ErrorKind::Unsupported));
            }
            self.anns.push((mv, Ann::Skip));
            self.anns.push((nv, Ann::Skip));
            self.anns.push((
                o.pos,
                Ann::StackGlobal {
                    module: ms,
                    name: ns,
                },
            ));
        }
        self.m.push(Slot::Global { idx, via: o.pos })
    }

    /// The `str` Python 3 would see for a text or py2 `str` (ASCII only) stack item.
    pub(super) fn str_of(&self, slot: &Slot) -> Option<String> {
        match *slot {
            Slot::Text { src, .. } => self.text_at(src),
            Slot::Py2Str { src, .. } => {
                let o = self.op_at(src)?;
                let b = strings::py2_str_bytes(&o)?;
                b.is_ascii()
                    .then(|| String::from_utf8_lossy(&b).into_owned())
            }
            _ => None,
        }
    }

    pub(super) fn text_at(&self, pos: usize) -> Option<String> {
        strings::text_utf8(&self.op_at(pos)?).map(Cow::into_owned)
    }

    /// The op at input offset `pos` (one the scan has read already).
    pub(super) fn op_at(&self, pos: usize) -> Option<Op<'a>> {
        Reader::new(self.src.get(pos..)?).next()?.ok()
    }

    pub(super) fn intern_global(&mut self, m: &str, n: &str) -> Result<u32, TranscodeError> {
        // Few distinct globals per value: a linear scan without allocating, a map past that.
        if self.globals.len() <= LINEAR_GLOBALS {
            if let Some(i) = self
                .globals
                .iter()
                .position(|g| g.module == m && g.name == n)
            {
                return Ok(i as u32);
            }
        } else if let Some(&i) = self.global_ix.get(&(m.to_owned(), n.to_owned())) {
            return Ok(i);
        }
        if m == "builtins" || m == "copyreg" || (m == "_codecs" && n == "encode") {
            self.ev_py3 = true;
        }
        let py3_only = compat::is_py3_only(m, n);
        let utc = self.is_utc_class(m, n);
        // Its calls are rewritten as `array.array(typecode, list)` where they can be
        // (`array_call`); any other use is refused at the end (`array_pushes`).
        let array_reconstructor = (m, n) == ("array", "_array_reconstructor");
        if py3_only {
            self.summary.py3_only_global = true;
            if self.target() == Some(Runtime::Py2) && !utc && !array_reconstructor {
                return Err(self.m.err(ErrorKind::Py3OnlyGlobal));
            }
        }
        // Python 3 looks a py2 name up as its `fix_imports` maps it, and as spelled: a name
        // missing both ways (`sets.Set`, `__builtin__.cmp`) fails there whatever is rewritten.
        if compat::is_py2_only(m, n) {
            self.summary.py2_only_global = true;
            if self.target() == Some(Runtime::Py3) {
                return Err(self.m.err(ErrorKind::Py2OnlyGlobal));
            }
        }
        let (m2, n2) = compat::py3_to_py2(m, n);
        if (m2 != m || n2 != n) && !compat::renamed_name_is_py2_too(m, n) {
            self.renames = true;
            // Python 2 cannot import it as written (the summary's sense of py3-only).
            self.summary.py3_only_global = true;
            if self.lossless_for_py3() && compat::py2_name_loses_py3_class(m, n) {
                return Err(self.m.err(ErrorKind::LossyForPy3));
            }
        }
        // `keeps_matter`: a py2 reader under `py2_text = utf8`.
        if compat::has_text_state(&m2, &n2) && self.keeps_matter() == Some(Runtime::Py2) {
            return Err(self.m.err(ErrorKind::Unsupported));
        }
        let unbuildable = compat::unbuildable_for(m, n);
        // Refused wherever named: a value holding the class itself, not an instance, is not
        // worth telling apart.
        if unbuildable.is_some_and(|u| u.0 == Runtime::Py3) && self.target() == Some(Runtime::Py3) {
            return Err(self.m.err(ErrorKind::Unsupported));
        }
        let classic = compat::is_py2_classic(&m2, &n2)
            || self.policy.is_some_and(|p| {
                p.py2_classic
                    .iter()
                    .any(|g| *g.module == *m2 && *g.name == *n2)
            });
        let set_like = matches!((&*m2, &*n2), ("__builtin__", "set" | "frozenset"));
        // The lists these two are given are written after their global: only then are list
        // items kept for the collision check (`collide.rs`).
        self.set_global_seen |= set_like;
        let collects_items = compat::collects_items(&m2, &n2);
        let value_key = compat::value_key(&m2, &n2);
        self.uuid_seen |= value_key == Some(compat::ValueKey::Uuid);
        let info = GlobalInfo {
            module: m.to_owned(),
            name: n.to_owned(),
            binary_arg: compat::binary_state_arg(m, n),
            unbuildable,
            classic,
            set_like,
            collects_items,
            codecs_encode: m == "_codecs" && n == "encode",
            bytes_type: (&*m2, &*n2) == ("__builtin__", "bytes"),
            reconstructor: (&*m2, &*n2) == ("copy_reg", "_reconstructor"),
            newobj_fn: (&*m2, &*n2) == ("copy_reg", "__newobj__"),
            str_value: compat::gives_str_value(&m2, &n2),
            object: (&*m2, &*n2) == ("__builtin__", "object"),
            keeps_text: compat::text_args(&m2, &n2),
            value_key,
            getattr: (&*m2, &*n2) == ("__builtin__", "getattr"),
            array_reconstructor,
        };
        if self.summary_globals.len() < MAX_SUMMARY_GLOBALS {
            self.summary_globals
                .push(Global::new(info.module.as_str(), info.name.as_str()));
        } else {
            self.summary.globals_complete = false;
        }
        self.globals.push(info);
        let i = (self.globals.len() - 1) as u32;
        if utc {
            self.utc.class = Some(i);
        }
        if self.is_target_utc(m, n) {
            self.utc.target_named = true;
        }
        if self.globals.len() > LINEAR_GLOBALS {
            if self.global_ix.is_empty() {
                for (j, g) in self.globals.iter().enumerate() {
                    self.global_ix
                        .insert((g.module.clone(), g.name.clone()), j as u32);
                }
            }
            self.global_ix.insert((m.to_owned(), n.to_owned()), i);
        }
        Ok(i)
    }

    pub(super) fn reduce(&mut self, o: &Op<'a>) -> Result<(), TranscodeError> {
        let args = self.m.pop()?;
        let func = self.m.pop()?;
        if self.walk_reduce(func, args) && self.target() == Some(Runtime::Py2) {
            // `getattr(Outer.Inner, 'RED')` (a nested enum's member): the rewrite writes the
            // class as `getattr(Outer, 'Inner')`, and a walk from its result is one the
            // firewall denies, where the input's passes (`downgrade.rs` `stack_global`).
            return Err(self.m.err(ErrorKind::Unsupported));
        }
        if self.utc.on {
            if let Some(result) = self.utc_reduce(o, func, args)? {
                return self.m.push(result);
            }
        }
        if self.target() == Some(Runtime::Py2) {
            self.classic_reconstructor(o, func, args)?;
            self.array_call(func, args)?;
        }
        self.str_value_call(func, args)?;
        self.bytes_call(func, args)?;
        let mut result = Slot::Any;
        if let (Slot::Global { idx, .. }, Slot::EmptyTuple { .. }) = (func, args) {
            // `bytes()`: empty bytes as CPython 3 writes them for protocols 0-2 (`save_bytes`),
            // a dict key or set member like any other bytes (b'' and u'' collide in Python 2).
            if self.globals.get(idx as usize).is_some_and(|g| g.bytes_type) {
                result = Slot::EmptyBytes;
                self.has_bytes = true;
            }
        }
        let (mut pair_list, mut tuple_members) = (None, None);
        if let (Slot::Global { idx, .. }, Slot::Tuple(elems, tuple)) = (func, args) {
            if let Some(g) = self.globals.get(idx as usize) {
                // Python 2's `array('c', ...)` (chars) has no Python 3 typecode: no rewrite
                // makes it load there.
                if let (Some(Runtime::Py3), Elem::Py2Str { src: pos, .. }) =
                    (self.target(), elems[0])
                {
                    if (&*g.module, &*g.name) == ("array", "array")
                        && self.str_of(&Slot::Py2Str { src: pos, via: pos }).as_deref() == Some("c")
                    {
                        return Err(self.m.err(ErrorKind::Unsupported));
                    }
                }
                // Python 3's `array('q', ...)` at protocols 0-2 (at 3+ it is
                // `array._array_reconstructor`, itself py3-only): Python 2's array lacks the
                // typecode, as if the global were missing.
                if (&*g.module, &*g.name) == ("array", "array") {
                    let code = match elems[0] {
                        Elem::Text { src, via } => self.str_of(&Slot::Text { src, via }),
                        Elem::Py2Str { src, via } => self.str_of(&Slot::Py2Str { src, via }),
                        _ => None,
                    };
                    if code.is_some_and(|c| compat::is_py3_only_typecode(c.as_bytes())) {
                        self.summary.py3_only_global = true;
                        if self.target() == Some(Runtime::Py2) {
                            return Err(self.m.err(ErrorKind::Py3OnlyGlobal));
                        }
                    }
                }
                let fold = compat::datetime_fold_byte(&g.module, &g.name);
                // `datetime`/`time` state with the fold bit (Python 3, protocol 4+): cleared for
                // Python 2, which rejects it (its month or hour byte).
                if let (Some(Runtime::Py2), Elem::Bytes { src: pos }) = (self.target(), elems[0]) {
                    let state = self.op_at(pos).map(|o| o.arg);
                    if let (Some(Some(place)), Some(state)) = (fold, state) {
                        if compat::fold_set(state, place) {
                            if self.lossless_for_py3() {
                                return Err(self.m.err(ErrorKind::LossyForPy3));
                            }
                            self.anns.push((pos, Ann::ClearFold { byte: place.1 }));
                            self.folds.push(pos);
                        }
                    }
                }
                // States of these classes Python 2 cannot take, which no CPython writes: text
                // (Python 3 takes latin-1 text, Python 2 only `str`), and `_codecs.encode` bytes
                // or a py2 `str` with the fold bit (the first is protocol 0-2's form, where
                // CPython drops fold; Python 2 has no fold).
                if let (Some(Runtime::Py2), Some(fold)) = (self.target(), fold) {
                    let first = self.tuple_items(tuple).and_then(|t| t.first()).copied();
                    let breaks = match first {
                        Some(Slot::Text { .. }) => true,
                        // A py2 `str` with the fold bit (by hand: no Python 2 writes one).
                        Some(Slot::Py2Str { src, .. }) => fold.is_some_and(|place| {
                            let op = self.op_at(src);
                            let bytes = op.as_ref().and_then(strings::py2_str_bytes);
                            bytes.is_some_and(|b| compat::fold_set(&b, place))
                        }),
                        Some(Slot::CodecsBytes { src }) => fold.is_some_and(|(len, k)| {
                            let op = self.op_at(src);
                            let text = op.as_ref().and_then(strings::text_utf8);
                            text.is_some_and(|t| {
                                let byte = t.chars().nth(usize::from(k)).map_or(0, u32::from);
                                t.chars().count() == len && byte & 0x80 != 0
                            })
                        }),
                        _ => false,
                    };
                    if breaks {
                        return Err(self.m.err(ErrorKind::Unsupported));
                    }
                }
                // Python 3's Unicode errors, their encoding text (Python 2's own has a `str`).
                if let (Some((Runtime::Py2, utf8_loads)), Some(Runtime::Py2)) =
                    (g.unbuildable, self.target())
                {
                    let utf8 = self.policy.is_some_and(|p| p.py2_text == Py2Text::Utf8);
                    if matches!(elems[0], Elem::Text { .. }) && !(utf8_loads && utf8) {
                        return Err(self.m.err(ErrorKind::Unsupported));
                    }
                }
                if let Some(k) = g.binary_arg {
                    if let Some(Elem::Py2Str { src: pos, via }) = elems.get(usize::from(k)) {
                        // Python 3 decodes an ASCII state to text, which `date`/`time`/
                        // `datetime` take (as latin-1): only a byte >= 0x80 fails there. The
                        // other classes of the table take no text at all.
                        if !self.summary.py2_binary_state {
                            let op = self.op_at(*pos);
                            let bytes = op.as_ref().and_then(strings::py2_str_bytes);
                            let ascii = fold.is_some() && bytes.is_some_and(|b| b.is_ascii());
                            self.summary.py2_binary_state = !ascii;
                        }
                        if self.target() == Some(Runtime::Py3) {
                            self.anns.push((*pos, Ann::AsBytes));
                            self.binary_uses.push((*pos, *via));
                        }
                    }
                }
                let one_arg = self.tuple_items(tuple).is_some_and(|t| t.len() == 1);
                // `OrderedDict([[k, v], ...])`, or a list of lists handed alone to a class
                // that may make a dict of it (an OrderedDict subclass).
                let pairs_class = (&*g.module, &*g.name) == ("collections", "OrderedDict")
                    || (g.collects_items && one_arg);
                if let (true, Elem::Container(pairs)) = (pairs_class, elems[0]) {
                    pair_list = Some(pairs);
                }
                // The same handed a tuple (`set((a, b))`, `OrderedDict(((k, v), ...))`): its
                // items are members, and the first items of its pairs keys.
                if let (true, Some(&[Slot::Tuple(_, inner)])) =
                    (pairs_class || g.set_like, self.tuple_items(tuple))
                {
                    tuple_members = Some(inner);
                }
                if g.set_like {
                    if let Elem::Container(c) = elems[0] {
                        if let Some(k) = self.containers.get_mut(c as usize) {
                            k.made = Made::Set;
                        }
                        // The set is its list's members (a set key is compared as a whole).
                        result = Slot::Container(c);
                    }
                }
                // A list as the one argument of another class may be a set's members: what
                // `set.__reduce__` hands a set subclass (`MySet([b'a', 'a'])` would be one
                // member in Python 2; see `compat::collects_items`). Its items are checked as
                // such. (A list among several arguments is taken as a plain argument.)
                if let (true, true, Elem::Container(c)) = (g.collects_items, one_arg, elems[0]) {
                    if let Some(k) = self.containers.get_mut(c as usize) {
                        k.members = true;
                    }
                }
                for (e, keep) in elems.iter().zip(g.keeps_text) {
                    if let (Elem::Text { src, via } | Elem::Py2Str { src, via }, true) = (*e, keep)
                    {
                        self.kept_uses.push((src, via));
                    }
                }
                // `array('u', [u'a', ...])` (Python 3, protocols 0-2): Python 2 takes only
                // unicode items for typecode 'u', so they stay unicode under `utf8`.
                if (&*g.module, &*g.name) == ("array", "array") {
                    if let (Some(Runtime::Py2), Elem::Container(c)) =
                        (self.keeps_matter(), elems[1])
                    {
                        let items = self.item_texts.iter().filter(|t| t.0 == c);
                        let uses: Vec<_> = items.map(|&(_, src, via)| (src, via)).collect();
                        self.kept_uses.extend(uses);
                    }
                }
                if g.codecs_encode {
                    if let Elem::Text { src, .. } = elems[0] {
                        result = Slot::CodecsBytes { src };
                        self.has_bytes = true;
                    }
                }
            }
        }
        if let Some(pairs) = pair_list {
            self.record_pair_keys(pairs);
        }
        if let Some(inner) = tuple_members {
            self.record_tuple_members(inner);
        }
        if result == Slot::Any {
            // `copy_reg.__newobj__(cls, ...)` builds a `cls`.
            let class = match (func, args) {
                (Slot::Global { idx, .. }, Slot::Tuple([Elem::Global { idx: cls, .. }, _], _))
                    if self.globals.get(idx as usize).is_some_and(|g| g.newobj_fn) =>
                {
                    Some(cls)
                }
                _ => global_index(func),
            };
            result = self.object(args, class);
        }
        self.m.push(result)
    }

    /// A py2 `str` handed to `str.__new__` by a call: `copy_reg._reconstructor(cls, str, s)`
    /// (a `str` subclass as Python 2 pickles it for protocols 0 and 1), `copy_reg.__newobj__(cls,
    /// s)` (NEWOBJ's REDUCE form), `str(s)` and `unicode(s)` (by hand). For a Python 3 reader
    /// `s` must stay text: refused where it would become `bytes` (its repr), as for NEWOBJ.
    fn str_value_call(&self, func: Slot, args: Slot) -> Result<(), TranscodeError> {
        let (Slot::Global { idx, .. }, Slot::Tuple(_, id)) = (func, args) else {
            return Ok(());
        };
        let g = self.globals.get(idx as usize).filter(|g| g.str_value);
        let (Some(g), Some(items)) = (g, self.tuple_items(id)) else {
            return Ok(());
        };
        let name = |i: u32| {
            self.globals
                .get(i as usize)
                .map(|g| compat::py3_to_py2(&g.module, &g.name))
        };
        let value = match (compat::py3_to_py2(&g.module, &g.name), items) {
            ((m, n), &[_, Slot::Global { idx: base, .. }, value])
                if (&*m, &*n) == ("copy_reg", "_reconstructor") =>
            {
                match name(base) {
                    Some((m, n)) if (&*m, &*n) == ("__builtin__", "str") => value,
                    _ => return Ok(()),
                }
            }
            ((m, n), &[_, value]) if (&*m, &*n) == ("copy_reg", "__newobj__") => value,
            ((m, n), &[value]) if m == "__builtin__" && (n == "str" || n == "unicode") => value,
            _ => return Ok(()),
        };
        if let Slot::Py2Str { src, .. } = value {
            if self.py3_bytes(src) {
                return Err(self.m.err(ErrorKind::Unsupported));
            }
        }
        Ok(())
    }

    /// A call to `bytes` (REDUCE, or NEWOBJ's `bytes.__new__(bytes, ...)`) for a Python 2
    /// reader, whose `bytes` is `str`: the same call gives another value there (`bytes(3)` is
    /// `b'\0\0\0'` in Python 3, `'3'` in Python 2; `bytes([65])` is `b'A'` and `'[65]'`;
    /// `bytes(u'x', 'ascii')` fails). Only `bytes()` and `bytes(<bytes>)` mean the same in
    /// both; any other arguments are refused (CPython writes neither: by hand or a custom
    /// `__reduce__`).
    fn bytes_call(&self, func: Slot, args: Slot) -> Result<(), TranscodeError> {
        if self.target() != Some(Runtime::Py2) {
            return Ok(());
        }
        let Slot::Global { idx, .. } = func else {
            return Ok(());
        };
        if !self.globals.get(idx as usize).is_some_and(|g| g.bytes_type) {
            return Ok(());
        }
        let same = match args {
            Slot::EmptyTuple { .. } => true,
            Slot::Tuple(_, id) => matches!(
                self.tuple_items(id),
                Some([Slot::Bytes { .. } | Slot::CodecsBytes { .. } | Slot::EmptyBytes])
            ),
            _ => false,
        };
        if same {
            Ok(())
        } else {
            Err(self.m.err(ErrorKind::Unsupported))
        }
    }

    /// Whether the py2 `str` op at `pos` becomes `bytes` for this policy's Python 3 reader.
    fn py3_bytes(&self, pos: usize) -> bool {
        let Some(p) = self.policy.filter(|p| p.target == Runtime::Py3) else {
            return false;
        };
        self.op_at(pos)
            .and_then(|o| strings::py2_str_bytes(&o))
            .is_some_and(|b| strings::py3_form(&b, p.py3_str) == Py3Form::Bytes)
    }

    /// `copy_reg._reconstructor(cls, object, None)` (how Python 3 pickles instances for protocol
    /// 0/1) of a classic class becomes `MARK cls OBJ`, as Python 2's `save_inst` writes it. Only
    /// the exact op sequence Python 3 writes is rewritten; anything else is refused, and so is
    /// `copy_reg.__newobj__(cls)` of a classic class.
    pub(super) fn classic_reconstructor(
        &mut self,
        o: &Op<'a>,
        func: Slot,
        args: Slot,
    ) -> Result<(), TranscodeError> {
        let (Slot::Global { idx: f, via: rv }, Slot::Tuple([cls, obj], _)) = (func, args) else {
            return Ok(());
        };
        let Elem::Global { idx: c, via: cv } = cls else {
            return Ok(());
        };
        let g = |i: u32| self.globals.get(i as usize);
        if !g(c).is_some_and(|g| g.classic) {
            return Ok(());
        }
        // `copy_reg.__newobj__(cls)`: `cls.__new__`, which a classic class lacks (Python 3
        // writes it at protocols 0-1 for a class whose `__reduce_ex__` asks for protocol 2).
        if g(f).is_some_and(|g| g.newobj_fn) {
            return Err(self.m.err(ErrorKind::Unsupported));
        }
        if !g(f).is_some_and(|g| g.reconstructor) {
            return Ok(());
        }
        let code = |pos: usize| self.src.get(pos).copied();
        let r = &self.recent;
        // The six ops before REDUCE: _reconstructor, MARK, cls, object, NONE, TUPLE.
        let ok = matches!(obj, Elem::Global { idx, via } if g(idx).is_some_and(|g| g.object) && via == r[3])
            && r[0] == rv
            && code(r[1]) == Some(op::MARK)
            && r[2] == cv
            && code(r[4]) == Some(op::NONE)
            && code(r[5]) == Some(op::TUPLE);
        if !ok {
            return Err(self.m.err(ErrorKind::Unsupported));
        }
        self.anns.push((rv, Ann::Skip));
        self.anns.push((r[3], Ann::Skip));
        self.anns.push((r[4], Ann::Skip));
        self.anns.push((r[5], Ann::SkipGone));
        self.anns.push((o.pos, Ann::NewobjToObj));
        self.classic_rewrite = true;
        Ok(())
    }

    /// BUILD: the ASCII py2 `str` keys of a state dict are attribute names, which stay `str`
    /// for a py3 reader whatever `py3_str` says (`bytes` attribute names break every object).
    pub(super) fn build(&mut self) -> Result<(), TranscodeError> {
        let state = self.m.pop()?;
        let obj = self.m.pop()?;
        if obj == Slot::Utc {
            // State for a converted UTC object (hand-made): the other runtime's class has none.
            self.utc_other_use()?;
        }
        if self.target() == Some(Runtime::Py3) {
            let dicts = match state {
                Slot::Container(c) => [Some(c), None],
                Slot::Tuple([a, b], _) => {
                    let c = |e: Elem| match e {
                        Elem::Container(c) => Some(c),
                        _ => None,
                    };
                    [c(a), c(b)]
                }
                _ => [None, None],
            };
            if self.keeps_matter() == Some(Runtime::Py3) {
                self.state_dicts.extend(dicts.iter().flatten());
            }
            let oldest = dicts.iter().flatten().min().copied();
            if let Some(oldest) = oldest {
                // Keys recorded since the oldest state dict was created, newest first.
                for k in self.keys.iter().rev().take_while(|k| k.container >= oldest) {
                    if let (true, Slot::Py2Str { src, via }) =
                        (dicts.contains(&Some(k.container)), k.slot)
                    {
                        self.kept_uses.push((src, via));
                    }
                }
            }
        }
        if let Slot::Object(id) = obj {
            if self.uuid_seen && self.value_key(id) == Some(compat::ValueKey::Uuid) {
                self.note_uuid_state(id, state);
            }
        }
        // The same object, its state set (which the collision check only looks into for a
        // UUID, above).
        self.m.push(match obj {
            Slot::Object(_) => obj,
            _ => Slot::Any,
        })
    }

    pub(super) fn newobj(&mut self, o: &Op<'a>) -> Result<(), TranscodeError> {
        let args = self.m.pop()?;
        let cls = self.m.pop()?;
        // `cls.__new__(cls, s)` with one py2 `str`: what `str.__getnewargs__` gives a `str`
        // subclass. Python 3's `str.__new__` given `bytes` makes their repr (`"b'\\xff'"`):
        // refused where the string would become `bytes`.
        if let Slot::Tuple([Elem::Py2Str { src, .. }, _], id) = args {
            if self.tuple_items(id).is_some_and(|t| t.len() == 1) && self.py3_bytes(src) {
                return Err(self.m.err(ErrorKind::Unsupported));
            }
        }
        self.bytes_call(cls, args)?;
        if let Slot::Global { idx, via } = cls {
            let classic = self.globals.get(idx as usize).is_some_and(|g| g.classic);
            if classic && self.target() == Some(Runtime::Py2) {
                let Slot::EmptyTuple { via: tv } = args else {
                    return Err(self.m.err(ErrorKind::Unsupported));
                };
                if self.recent[RECENT - 2..] != [via, tv] {
                    return Err(self.m.err(ErrorKind::Unsupported));
                }
                // OBJ needs a MARK the input does not have, open from the class to here.
                if !self.m.mark_room() {
                    return Err(self.m.err(ErrorKind::LimitExceeded));
                }
                self.anns.push((via, Ann::MarkBefore));
                self.anns.push((tv, Ann::Skip));
                self.anns.push((o.pos, Ann::NewobjToObj));
                self.classic_rewrite = true;
            }
        }
        let result = self.object(args, global_index(cls));
        self.m.push(result)
    }
}
