//! Pickle firewall: decides from the globals a pickle references whether it may reach a Python
//! process. Sans-IO and pure: no tokio, no logging, no metrics; the handler acts on the verdict.
//!
//! Unpickling calls whatever the stream names with `GLOBAL`/`INST`/`STACK_GLOBAL` and applies it
//! with `REDUCE`/`BUILD`/`NEWOBJ`, so a cache entry written by an attacker who can reach
//! memcached is code execution in every web worker that reads it. The transcoder lists every
//! global a value references ([`Summary::globals`]); the firewall matches that list against a
//! deny list (`deny_list`) plus per-config extra `deny`/`allow` entries. Three rules:
//!
//! - **deny list**: `module.name` entries and whole modules (`subprocess.*`, with submodules),
//!   matched after mapping Python 2 and platform spellings (`__builtin__`, `posix`, `nt`,
//!   `cPickle`, `commands`, ...) onto the Python 3 name; a dotted name is denied when one of
//!   its prefixes is (`types.FunctionType.X`);
//! - **dunder names**: any name with a `__x` component (`__import__`, `__globals__`, ...), except
//!   `copyreg.__newobj__`/`__newobj_ex__`;
//! - **dotted names**: protocol 4 lets a name walk attributes (`posixpath` + `os.system` is
//!   `os.system`; `pathlib` + `Path.write_text` is a method). A dotted name passes only when
//!   every component looks like a class (`Outer.Inner`: starts with an ASCII capital).
//!
//! A global referenced only inside a nested pickle string cannot be seen, which is why the loaders
//! (`pickle.loads`, `marshal.loads`, `yaml.load`, ...) are denied themselves. When the transcoder
//! could not list every global ([`Summary::globals_complete`] is false, the value did not parse,
//! or the reader gave up part-way), the value counts as unsafe: the safe default.
//!
//! Modes per route ([`FirewallMode`]): `block` (the default: the handler serves a miss and counts
//! `unsafe_global`), `observe` (count and log, serve the value), `allow` (no check).

mod deny_list;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use crate::pickle::{Global, Outcome, Reason, Summary, Transcoded};

use deny_list::{
    canonical_module, ALLOWED_DOTTED, ALLOWED_DUNDERS, DENIED_GLOBALS, DENIED_MODULES, VALUE_TYPES,
};

/// What a route does with a value that references a denied global.
///
/// Config: `firewall = "block" | "observe" | "allow"` on a route; `block` by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FirewallMode {
    /// Serve the value as a miss, count it as `unsafe_global`, log route and global.
    #[default]
    Block,
    /// Count and log as `block` does, but serve the value.
    Observe,
    /// Do not check.
    Allow,
}

impl FirewallMode {
    /// The config spelling, also used as a log field.
    pub fn as_str(self) -> &'static str {
        match self {
            FirewallMode::Block => "block",
            FirewallMode::Observe => "observe",
            FirewallMode::Allow => "allow",
        }
    }
}

/// Extra entries on top of the default deny list (config section `[firewall]`, or per route).
///
/// Entry syntax: `"module.name"`, `"module:name"` (unambiguous when the module is dotted:
/// `"xml.etree.ElementTree:parse"`), or `"module.*"` / `"module:*"` for a module and its
/// submodules. Python 2 spellings are mapped like the defaults (`"posix.system"` is
/// `"os.system"`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallRules {
    /// Globals or modules to deny in addition to the defaults.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Single globals to let through although a default rule denies them (e.g. `"os.stat_result"`).
    /// Wildcards are rejected: allowing a whole module is how a gadget gets back in.
    #[serde(default)]
    pub allow: Vec<String>,
    /// When not empty, the only globals that pass (besides `VALUE_TYPES` and `allow`):
    /// `module.*` (with submodules) or `module.Class` (with what is reached through it,
    /// `module.Class.MEMBER`). The deny rules apply first, so an entry never lets a denied
    /// global through.
    #[serde(default)]
    pub only: Vec<String>,
}

impl FirewallRules {
    /// Both lists of `self` followed by those of `more` (global section, then a route's own).
    pub fn merged(&self, more: &FirewallRules) -> FirewallRules {
        FirewallRules {
            deny: self.deny.iter().chain(&more.deny).cloned().collect(),
            allow: self.allow.iter().chain(&more.allow).cloned().collect(),
            only: self.only.iter().chain(&more.only).cloned().collect(),
        }
    }

    /// Every malformed entry, with its list and index (for a TOML path such as `firewall.deny[2]`).
    pub fn validate(&self) -> Vec<FirewallError> {
        let mut errors = Vec::new();
        for (list, entries) in [("deny", &self.deny), ("only", &self.only)] {
            for (index, entry) in entries.iter().enumerate() {
                if parse_pattern(entry).is_none() {
                    errors.push(FirewallError::BadEntry {
                        list,
                        index,
                        entry: entry.clone(),
                    });
                }
            }
        }
        for (index, entry) in self.allow.iter().enumerate() {
            match parse_pattern(entry) {
                None => errors.push(FirewallError::BadEntry {
                    list: "allow",
                    index,
                    entry: entry.clone(),
                }),
                Some(Pattern::Module(_)) => errors.push(FirewallError::WildcardAllow {
                    index,
                    entry: entry.clone(),
                }),
                Some(Pattern::Global(..)) => {}
            }
        }
        errors
    }
}

/// A malformed `[firewall]` entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FirewallError {
    /// Not `module.name`, `module:name` or `module.*`.
    #[error(
        "{list}[{index}] = {entry:?}: expected \"module.name\", \"module:name\" or \"module.*\""
    )]
    BadEntry {
        /// `"deny"`, `"allow"` or `"only"`.
        list: &'static str,
        /// Position in the list.
        index: usize,
        /// The entry as written.
        entry: String,
    },
    /// A wildcard in `allow`.
    #[error("allow[{index}] = {entry:?}: allow entries name one global, not a module wildcard")]
    WildcardAllow {
        /// Position in the list.
        index: usize,
        /// The entry as written.
        entry: String,
    },
}

/// Which rule judged a global unsafe (a closed set, usable as a log field or metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// On the default deny list or a configured `deny` entry.
    Denied,
    /// A `__dunder__` name or attribute.
    Dunder,
    /// A dotted protocol-4 name that walks through something other than classes.
    DottedName,
    /// Not named by the route's `only` list (nor a known value type).
    NotListed,
}

impl Rule {
    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Denied => "deny_list",
            Rule::Dunder => "dunder_name",
            Rule::DottedName => "dotted_name",
            Rule::NotListed => "not_listed",
        }
    }
}

/// Why a value is unsafe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finding<'a> {
    /// A referenced global is denied.
    Global {
        /// The first denied global, as written in the pickle.
        global: &'a Global,
        /// The rule that denied it.
        rule: Rule,
    },
    /// The transcoder could not list every global the value references, so none can be trusted.
    Incomplete(&'static str),
}

impl Finding<'_> {
    /// `module.name` of the denied global, or `<why>` when the list was incomplete (log field).
    pub fn global_name(&self) -> String {
        match self {
            Finding::Global { global, .. } => format!("{}.{}", global.module, global.name),
            Finding::Incomplete(why) => format!("<{why}>"),
        }
    }

    /// The rule name, or the reason the list is incomplete (closed set; log field).
    pub fn rule_str(&self) -> &'static str {
        match self {
            Finding::Global { rule, .. } => rule.as_str(),
            Finding::Incomplete(why) => why,
        }
    }
}

/// What the handler must do with a fetched pickle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judgement<'a> {
    /// Serve it.
    Pass,
    /// Serve it, but count and log the finding (`observe` mode).
    Observe(Finding<'a>),
    /// Serve a miss instead, count and log the finding (`block` mode).
    Block(Finding<'a>),
}

/// A compiled firewall for one route: mode, deny rules, allow exceptions. Immutable; share it
/// through an `Arc` in the route table.
#[derive(Clone, Debug)]
pub struct Firewall {
    mode: FirewallMode,
    /// Canonical module names denied with their submodules.
    denied_modules: HashSet<String>,
    /// Canonical module name -> denied names.
    denied: HashMap<String, HashSet<String>>,
    /// Canonical module name -> names let through despite a rule.
    allowed: HashMap<String, HashSet<String>>,
    /// The `only` list, when it has entries.
    only: Option<OnlyList>,
}

/// A compiled `only` list.
#[derive(Clone, Debug, Default)]
struct OnlyList {
    /// Canonical module names listed with their submodules.
    modules: HashSet<String>,
    /// Canonical module name -> listed names.
    globals: HashMap<String, HashSet<String>>,
}

impl OnlyList {
    /// Whether the list (or [`VALUE_TYPES`]) names `module.name` (`raw`: the module as
    /// written): a module entry with its submodules, a global entry with what is reached
    /// through it (`Class.MEMBER`).
    fn names(&self, raw: &str, module: &str, name: &str) -> bool {
        let in_module = |m: &str| {
            self.modules.contains(m)
                || m.match_indices('.')
                    .any(|(at, _)| self.modules.contains(&m[..at]))
        };
        // `Class`, then `Class.MEMBER`...: each prefix of the name at a dot.
        let mut prefixes = name
            .match_indices('.')
            .map(|(at, _)| &name[..at])
            .chain(std::iter::once(name));
        let named =
            |n: &str| contains(&self.globals, module, n) || VALUE_TYPES.contains(&(module, n));
        in_module(raw) || in_module(module) || prefixes.any(named)
    }
}

impl Default for Firewall {
    /// `block` mode with the default deny list.
    fn default() -> Self {
        Firewall::with_defaults(FirewallMode::Block)
    }
}

impl Firewall {
    /// The default deny list in `mode`, no extra entries.
    pub fn with_defaults(mode: FirewallMode) -> Firewall {
        let mut firewall = Firewall {
            mode,
            denied_modules: DENIED_MODULES.iter().map(|m| m.to_string()).collect(),
            denied: HashMap::new(),
            allowed: HashMap::new(),
            only: None,
        };
        for (module, name) in DENIED_GLOBALS {
            insert(&mut firewall.denied, module, name);
        }
        firewall
    }

    /// The default deny list plus `rules`, in `mode`.
    ///
    /// # Errors
    /// Every malformed entry (see [`FirewallRules::validate`]).
    pub fn new(mode: FirewallMode, rules: &FirewallRules) -> Result<Firewall, Vec<FirewallError>> {
        let errors = rules.validate();
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut firewall = Firewall::with_defaults(mode);
        for pattern in rules.deny.iter().filter_map(|e| parse_pattern(e)) {
            match pattern {
                Pattern::Module(module) => {
                    firewall
                        .denied_modules
                        .insert(canonical_module(module).to_string());
                }
                Pattern::Global(module, name) => {
                    insert(&mut firewall.denied, canonical_module(module), name)
                }
            }
        }
        for pattern in rules.allow.iter().filter_map(|e| parse_pattern(e)) {
            if let Pattern::Global(module, name) = pattern {
                insert(&mut firewall.allowed, canonical_module(module), name);
            }
        }
        if !rules.only.is_empty() {
            let mut only = OnlyList::default();
            for pattern in rules.only.iter().filter_map(|e| parse_pattern(e)) {
                match pattern {
                    Pattern::Module(module) => {
                        only.modules.insert(canonical_module(module).to_string());
                    }
                    Pattern::Global(module, name) => {
                        insert(&mut only.globals, canonical_module(module), name);
                    }
                }
            }
            firewall.only = Some(only);
        }
        Ok(firewall)
    }

    /// The route's mode.
    pub fn mode(&self) -> FirewallMode {
        self.mode
    }

    /// The rule that denies `global`, if any (mode is not consulted).
    pub fn rule_for(&self, global: &Global) -> Option<Rule> {
        let raw = &*global.module;
        let module = canonical_module(raw);
        let name = &*global.name;
        if contains(&self.allowed, module, name) {
            return None;
        }
        if self.module_denied(raw) || self.module_denied(module) {
            return Some(Rule::Denied);
        }
        // A dotted name is reached through each of its prefixes (`types.FunctionType.X` goes
        // through `types.FunctionType`, and a Python 2 reader's rewrite of a nested class names
        // `Outer` itself): denied when one of them is.
        let prefixes = name
            .match_indices('.')
            .map(|(i, _)| &name[..i])
            .chain(std::iter::once(name));
        for prefix in prefixes {
            if contains(&self.denied, module, prefix) {
                return Some(Rule::Denied);
            }
            // Python 3 loads a Python 2 name as its `fix_imports` maps it (`whichdb.open` is
            // `dbm.open`): a mapped name is judged in both spellings.
            let (m3, n3) = crate::pickle::compat::py2_to_py3(raw, prefix);
            if (&*m3, &*n3) != (raw, prefix) {
                let m3c = canonical_module(&m3);
                if self.module_denied(m3c) || contains(&self.denied, m3c, &n3) {
                    return Some(Rule::Denied);
                }
            }
        }
        if name.split('.').any(|part| part.starts_with("__"))
            && !ALLOWED_DUNDERS.contains(&(module, name))
        {
            return Some(Rule::Dunder);
        }
        if name.contains('.')
            && !name
                .split('.')
                .all(|part| part.starts_with(|c: char| c.is_ascii_uppercase()))
            && !ALLOWED_DOTTED.contains(&(module, name))
        {
            return Some(Rule::DottedName);
        }
        match &self.only {
            Some(only) if !only.names(raw, module, name) => Some(Rule::NotListed),
            _ => None,
        }
    }

    /// The first denied global in `globals` (mode is not consulted).
    pub fn check<'a>(&self, globals: &'a [Global]) -> Option<&'a Global> {
        globals.iter().find(|g| self.rule_for(g).is_some())
    }

    /// The verdict for a fetched pickle, from what [`transcode`](crate::pickle::transcode)
    /// returned for it (the outcome matters: a refused value may have been scanned only partly).
    pub fn judge<'a>(&self, transcoded: &'a Transcoded) -> Judgement<'a> {
        let refused = match transcoded.outcome {
            Outcome::Refused(reason) => Some(reason),
            Outcome::Unchanged | Outcome::Rewritten(_) => None,
        };
        self.judge_summary(transcoded.summary.as_ref(), refused)
    }

    /// The verdict from a [`Summary`] (`None`: the value did not parse) and the reason the
    /// transcoder refused the value, if it did. For callers of [`analyze`](crate::pickle::analyze).
    pub fn judge_summary<'a>(
        &self,
        summary: Option<&'a Summary>,
        refused: Option<Reason>,
    ) -> Judgement<'a> {
        let finding = match self.mode {
            FirewallMode::Allow => return Judgement::Pass,
            FirewallMode::Block | FirewallMode::Observe => self.find(summary, refused),
        };
        match (finding, self.mode) {
            (None, _) | (_, FirewallMode::Allow) => Judgement::Pass,
            (Some(finding), FirewallMode::Observe) => Judgement::Observe(finding),
            (Some(finding), FirewallMode::Block) => Judgement::Block(finding),
        }
    }

    fn find<'a>(
        &self,
        summary: Option<&'a Summary>,
        refused: Option<Reason>,
    ) -> Option<Finding<'a>> {
        let Some(summary) = summary else {
            return Some(Finding::Incomplete("unparseable"));
        };
        let hit = summary.globals.iter().find_map(|global| {
            self.rule_for(global)
                .map(|rule| Finding::Global { global, rule })
        });
        hit.or_else(|| incomplete(summary, refused).map(Finding::Incomplete))
    }

    fn module_denied(&self, module: &str) -> bool {
        self.denied_modules.contains(module)
            || module
                .match_indices('.')
                .any(|(at, _)| self.denied_modules.contains(&module[..at]))
    }
}

/// Why `summary.globals` may not hold every global the value references, if so.
///
/// Python runs every opcode before the one it fails on, so a value the reader gave up on
/// part-way (malformed, truncated, over a limit, unknown protocol) or that names globals through
/// the process-local extension registry (EXT1/2/4) cannot be vouched for; nor can a list the
/// transcoder says is incomplete ([`Summary::globals_complete`]: more than
/// [`MAX_SUMMARY_GLOBALS`](crate::pickle::MAX_SUMMARY_GLOBALS) distinct globals, or extension
/// codes seen by [`analyze`](crate::pickle::analyze)).
fn incomplete(summary: &Summary, refused: Option<Reason>) -> Option<&'static str> {
    let by_reason = refused.and_then(|reason| match reason {
        reason @ (Reason::Malformed
        | Reason::Truncated
        | Reason::LimitExceeded
        | Reason::UnsupportedProtocol
        | Reason::Extension) => Some(reason.as_str()),
        Reason::TrailingData
        | Reason::NewobjEx
        | Reason::PersistentId
        | Reason::OutOfBandBuffer
        | Reason::Py3OnlyGlobal
        | Reason::Py2OnlyGlobal
        | Reason::Collision
        | Reason::Unsupported
        | Reason::LossyForPy3 => None,
    });
    by_reason.or((!summary.globals_complete).then_some("globals_incomplete"))
}

/// A parsed `deny`/`allow` entry.
#[derive(Debug, PartialEq, Eq)]
enum Pattern<'a> {
    /// `module.*`: the module and its submodules.
    Module(&'a str),
    /// `module.name`.
    Global(&'a str, &'a str),
}

fn parse_pattern(entry: &str) -> Option<Pattern<'_>> {
    let (module, name) = match entry.split_once(':') {
        Some(split) => split,
        None => entry.rsplit_once('.')?,
    };
    let word =
        |s: &str| !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c == '*' || c == ':');
    let dotted_ok = |s: &str| s.split('.').all(word);
    if !dotted_ok(module) {
        return None;
    }
    match name {
        "*" => Some(Pattern::Module(module)),
        name if dotted_ok(name) => Some(Pattern::Global(module, name)),
        _ => None,
    }
}

fn insert(map: &mut HashMap<String, HashSet<String>>, module: &str, name: &str) {
    map.entry(module.to_string())
        .or_default()
        .insert(name.to_string());
}

fn contains(map: &HashMap<String, HashSet<String>>, module: &str, name: &str) -> bool {
    map.get(module).is_some_and(|names| names.contains(name))
}
