//! Reading the TOML tables into the raw structs: one table at a time, and when a table does not
//! deserialize, one key at a time, so that every bad key of it is reported with its full path
//! (`pool.main.connections`), not only serde's first error under the table's name. A table that
//! does not parse is left out of the configuration and remembered in [`LeftOut`], so validation
//! does not also report it as missing (`no pool named ...`). Never checks values; that is
//! `Config::validate`.
use serde::de::DeserializeOwned;

use super::{problem, Problem};

/// What the parse left out for being wrong (its problems are reported already), so that
/// validation does not report it a second time as absent.
#[derive(Debug, Default)]
pub(super) struct LeftOut {
    /// Some `[[listener]]` entry did not parse (or `listener` is not an array of tables).
    pub listeners: bool,
    /// `[pool.NAME]` tables that did not parse.
    pub pools: Vec<String>,
    /// `pool` is not a table of tables: which pools exist is unknown.
    pub pool_section: bool,
    /// A `[[route]]` that did not parse may be the default route: its prefix is `""` or
    /// unreadable (or `route` is not an array of tables).
    pub default_route: bool,
}

/// Deserializes one table, recording problems instead of stopping: `None` when anything in it
/// is wrong. Each key is then tried alone against `T` ([`key_problem`]): an unknown key is
/// reported under the table's path as serde words it (`route[0]: unknown field ...`), a key of
/// the wrong type or value under its own (`route[0].mode: ...`). What the keys do not explain
/// (a required key that is absent) is reported under the table's path.
pub(super) fn section<T: DeserializeOwned>(
    v: toml::Value,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let table = match v {
        toml::Value::Table(table) => table,
        other => {
            if let Err(e) = other.try_into::<T>() {
                problems.push(problem(path, e.message().trim()));
            }
            return None;
        }
    };
    let whole = toml::Value::Table(table.clone()).try_into::<T>();
    let Err(whole) = whole else {
        return whole.ok();
    };
    let mut rest = table.clone();
    let mut bad = Vec::new();
    for (key, value) in &table {
        if let Some(p) = key_problem::<T>(path, key, value) {
            problems.push(p);
            rest.remove(key);
            bad.push(key.as_str());
        }
    }
    let left = if bad.is_empty() {
        Err(whole)
    } else {
        toml::Value::Table(rest).try_into::<T>()
    };
    if let Err(e) = left {
        let message = e.message().trim();
        // A key taken out for being wrong is not also "missing".
        if !bad
            .iter()
            .any(|k| message == format!("missing field `{k}`"))
        {
            problems.push(problem(path, message));
        }
    }
    None
}

/// The problem of `key = value` in a table deserialized as `T`, found by deserializing a table
/// holding that key alone: serde's derive reads keys in file order and checks for absent ones
/// only at the end, so `missing field` means this key was fine (serde's wording of its own
/// errors, `serde::de::Error::missing_field` and `unknown_field`, is what is matched).
fn key_problem<T: DeserializeOwned>(path: &str, key: &str, value: &toml::Value) -> Option<Problem> {
    let alone = |v: toml::Value| {
        let table = toml::Table::from_iter([(key.to_owned(), v)]);
        toml::Value::Table(table).try_into::<T>().err()
    };
    let e = alone(value.clone())?;
    let message = e.message().trim();
    if message.starts_with("missing field `") {
        return None;
    }
    if message.starts_with("unknown field `") {
        return Some(problem(path, message));
    }
    let found = format!("{} {}", value.type_str(), shown(value));
    let at = format!("{path}.{key}");
    // The toml crate reports a non-string where an enum is wanted as `invalid type: unit
    // variant, expected string only`; a string no variant has makes serde list the variants.
    if !value.is_str() && message.contains("variant") {
        let probe = alone(toml::Value::String("\u{1}".into()));
        let probe = probe.as_ref().map(|e| e.message().trim());
        if let Some(expected) = probe.and_then(|m| m.strip_prefix("unknown variant `\u{1}`, ")) {
            return Some(problem(at, format!("{expected}, found {found}")));
        }
    }
    // serde's own type and value errors say what they found; custom ones (`invalid socket
    // address syntax`) do not.
    let says_found = [
        "invalid type",
        "invalid value",
        "invalid length",
        "unknown variant",
    ]
    .iter()
    .any(|s| message.starts_with(s));
    if says_found {
        Some(problem(at, message))
    } else {
        Some(problem(at, format!("{message} (found {found})")))
    }
}

/// `value` as written in TOML, cut short past 60 characters.
fn shown(value: &toml::Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

/// Deserializes an array of tables element by element, so each bad element is reported (and
/// left out); returns the entries that parse with their positions in the file, for
/// [`renumber`] (the validation of the others counts without the bad ones).
pub(super) fn array<T: DeserializeOwned>(
    v: toml::Value,
    path: &str,
    problems: &mut Vec<Problem>,
) -> (Vec<T>, Vec<usize>) {
    match v {
        toml::Value::Array(items) => items
            .into_iter()
            .enumerate()
            .filter_map(|(i, item)| Some((section(item, &format!("{path}[{i}]"), problems)?, i)))
            .unzip(),
        _ => {
            problems.push(problem(path, "expected an array of tables ([[...]])"));
            (Vec::new(), Vec::new())
        }
    }
}

/// Rewrites each `name[i]` in validation problems (their paths and messages) to the entry's
/// position in the file (`at[i]`), where entries before it did not parse.
pub(super) fn renumber(problems: &mut [Problem], name: &str, at: &[usize]) {
    for p in problems {
        p.path = renumbered(&p.path, name, at);
        p.message = renumbered(&p.message, name, at);
    }
}

fn renumbered(text: &str, name: &str, at: &[usize]) -> String {
    let open = format!("{name}[");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(&open) {
        out.push_str(&rest[..start + open.len()]);
        rest = &rest[start + open.len()..];
        let Some((index, tail)) = rest.split_once(']') else {
            break;
        };
        if let Some(&file_index) = index.parse::<usize>().ok().and_then(|i| at.get(i)) {
            out.push_str(&format!("{file_index}]"));
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}
