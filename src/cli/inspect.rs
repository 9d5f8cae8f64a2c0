//! `picklebridge inspect [FILE] [--json]`: a `pickletools.dis`-like disassembly of one pickle
//! (offset, opcode byte, name, argument, indented by open MARKs) followed by what picklebridge
//! detects in it (the [`Summary`] the proxy's mismatch metrics use).
//!
//! Exit codes: 0 the pickle is valid; 3 it is not (the ops read so far and the error are printed);
//! 74 I/O error.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::pickle::opcode::{self, ArgKind};
use crate::pickle::{analyze, Op, Reader, Summary};

/// Arguments of `picklebridge inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON object (ops, summary, error) instead of text.
    #[arg(long)]
    pub json: bool,
    /// The pickle file; stdin when absent.
    pub file: Option<PathBuf>,
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    let data = match &args.file {
        Some(path) => std::fs::read(path),
        None => {
            let mut v = Vec::new();
            std::io::stdin().read_to_end(&mut v).map(|_| v)
        }
    };
    let data = match data {
        Ok(d) => d,
        Err(e) => {
            eprintln!("picklebridge inspect: {e}");
            return ExitCode::from(super::EX_IOERR);
        }
    };
    let (text, ok) = if args.json { json(&data) } else { text(&data) };
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        eprintln!("picklebridge inspect: writing stdout: {e}");
        return ExitCode::from(super::EX_IOERR);
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::transcode::EXIT_REFUSED)
    }
}

/// The disassembly and summary as text; `false` when the pickle is invalid.
pub fn text(data: &[u8]) -> (String, bool) {
    let mut out = String::new();
    let mut depth: usize = 0;
    for item in Reader::new(data) {
        let Ok(op) = item else { break };
        let info = op.info();
        if info.mark {
            depth = depth.saturating_sub(1);
        }
        let line = format!(
            "{:5}: {:<4} {}{:<16} {}",
            op.pos,
            code_repr(op.code),
            "    ".repeat(depth.min(20)),
            info.name,
            render_arg(&op)
        );
        let _ = writeln!(out, "{}", line.trim_end());
        if op.code == opcode::MARK {
            depth += 1;
        }
    }
    match analyze(data) {
        Ok(s) => {
            out.push('\n');
            out.push_str(&summary_text(&s));
            (out, true)
        }
        Err(e) => {
            let _ = writeln!(out, "error: {e} (reason {})", e.reason());
            (out, false)
        }
    }
}

/// The disassembly and summary as one JSON object; `false` when the pickle is invalid.
pub fn json(data: &[u8]) -> (String, bool) {
    let ops: Vec<serde_json::Value> = Reader::new(data)
        .map_while(Result::ok)
        .map(|op| {
            serde_json::json!({
                "pos": op.pos,
                "op": op.info().name,
                "proto": op.info().proto,
                "arg": render_arg(&op),
            })
        })
        .collect();
    let (summary, error, ok) = match analyze(data) {
        Ok(s) => (summary_json(&s), serde_json::Value::Null, true),
        Err(e) => (
            serde_json::Value::Null,
            serde_json::json!({
                "message": e.to_string(),
                "reason": e.reason().as_str(),
                "offset": e.offset,
            }),
            false,
        ),
    };
    let v = serde_json::json!({ "ops": ops, "summary": summary, "error": error });
    (format!("{v}\n"), ok)
}

fn summary_text(s: &Summary) -> String {
    let yes = |b: bool| if b { "yes" } else { "no" };
    let globals: Vec<String> = s.globals.iter().map(ToString::to_string).collect();
    format!(
        "declared protocol: {}\nhighest protocol used: {}\nwriter: {}\npy2 str non-ASCII: {}\n\
         py2 str binary state: {}\npy3 text: {}\npy3-only global: {}\npy2-only global: {}\n\
         globals: {}{}\n",
        s.declared_protocol
            .map_or_else(|| "none".to_owned(), |p| p.to_string()),
        s.max_protocol,
        s.writer.as_str(),
        yes(s.py2_str_non_ascii),
        yes(s.py2_binary_state),
        yes(s.py3_text),
        yes(s.py3_only_global),
        yes(s.py2_only_global),
        if globals.is_empty() {
            "none".to_owned()
        } else {
            globals.join(", ")
        },
        if s.globals_complete {
            ""
        } else {
            " (incomplete)"
        },
    )
}

fn summary_json(s: &Summary) -> serde_json::Value {
    serde_json::json!({
        "declared_protocol": s.declared_protocol,
        "max_protocol": s.max_protocol,
        "writer": s.writer.as_str(),
        "py2_str_non_ascii": s.py2_str_non_ascii,
        "py2_binary_state": s.py2_binary_state,
        "py3_text": s.py3_text,
        "py3_only_global": s.py3_only_global,
        "py2_only_global": s.py2_only_global,
        "globals": s.globals.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "globals_complete": s.globals_complete,
    })
}

/// The opcode byte as pickletools shows it: the character when printable, else `\xNN`.
fn code_repr(code: u8) -> String {
    if code.is_ascii_graphic() {
        char::from(code).to_string()
    } else {
        format!("\\x{code:02x}")
    }
}

/// Most characters of an argument shown.
const MAX_ARG: usize = 80;

fn render_arg(op: &Op<'_>) -> String {
    let info = op.info();
    let s = match info.arg {
        ArgKind::None => String::new(),
        ArgKind::U1 | ArgKind::U2 | ArgKind::U4 | ArgKind::U8 | ArgKind::I4 => {
            op.uint().to_string()
        }
        ArgKind::F8 => <[u8; 8]>::try_from(op.arg)
            .map(|b| format!("{:?}", f64::from_be_bytes(b)))
            .unwrap_or_default(),
        ArgKind::TwoLines => op
            .global_pair()
            .map(|(m, n)| {
                format!(
                    "'{} {}'",
                    String::from_utf8_lossy(m),
                    String::from_utf8_lossy(n)
                )
            })
            .unwrap_or_default(),
        ArgKind::QuotedLine => String::from_utf8_lossy(op.arg).into_owned(),
        _ => match op.code {
            opcode::LONG1 | opcode::LONG4 => long_le(op.arg),
            opcode::UNICODE => format!("{:?}", String::from_utf8_lossy(op.arg)),
            opcode::BINUNICODE | opcode::SHORT_BINUNICODE | opcode::BINUNICODE8 => {
                format!("{:?}", String::from_utf8_lossy(op.arg))
            }
            opcode::BINSTRING | opcode::SHORT_BINSTRING => format!("'{}'", escape(op.arg)),
            opcode::BINBYTES | opcode::SHORT_BINBYTES | opcode::BINBYTES8 | opcode::BYTEARRAY8 => {
                format!("b'{}'", escape(op.arg))
            }
            _ => String::from_utf8_lossy(op.arg).into_owned(),
        },
    };
    if s.chars().count() > MAX_ARG {
        let cut: String = s.chars().take(MAX_ARG).collect();
        format!("{cut}... ({} bytes)", op.arg.len())
    } else {
        s
    }
}

fn escape(b: &[u8]) -> String {
    b.iter()
        .flat_map(|&c| std::ascii::escape_default(c))
        .map(char::from)
        .collect()
}

/// A little-endian two's-complement integer (LONG1/LONG4) in decimal when it fits in i128.
fn long_le(b: &[u8]) -> String {
    if b.is_empty() {
        return "0".to_owned();
    }
    if b.len() > 16 {
        return format!("<{}-byte long>", b.len());
    }
    let mut v: i128 = if b[b.len() - 1] & 0x80 != 0 { -1 } else { 0 };
    for &byte in b.iter().rev() {
        v = (v << 8) | i128::from(byte);
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disassembly_shows_ops_marks_and_summary() {
        // py3: pickle.dumps([1, 'a', b'\xff'], 4) without the frame
        let (t, ok) = text(b"\x80\x04]\x94(K\x01\x8c\x01a\x94C\x01\xff\x94e.");
        assert!(ok);
        assert!(t.contains("    0: \\x80 PROTO            4\n"), "{t}");
        assert!(
            t.contains("    7: \\x8c     SHORT_BINUNICODE \"a\"\n"),
            "{t}"
        );
        assert!(t.contains("b'\\xff'"), "{t}");
        assert!(t.contains("   15: e    APPENDS"), "{t}");
        assert!(t.contains("writer: py3\n"), "{t}");
        let (t, ok) = text(b"K\x01");
        assert!(!ok);
        assert!(
            t.contains("error: truncated pickle at offset 2 (reason truncated)"),
            "{t}"
        );
    }

    #[test]
    fn json_has_ops_summary_and_error() {
        let (j, ok) = json(b"\x80\x02\x8a\x02\x00\x80.");
        assert!(ok);
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["ops"][1]["op"], "LONG1");
        assert_eq!(v["ops"][1]["arg"], "-32768");
        assert_eq!(v["summary"]["max_protocol"], 2);
        assert_eq!(v["summary"]["globals_complete"], true);
        assert!(v["error"].is_null());
        // EXT1 names a global through the copyreg registry: the list cannot be complete.
        let (j, ok) = json(b"\x80\x02\x82\x01.");
        assert!(ok);
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["summary"]["globals_complete"], false);
        let (t, _) = text(b"\x80\x02\x82\x01.");
        assert!(t.contains("globals: none (incomplete)\n"), "{t}");
        let (j, ok) = json(b"N.N");
        assert!(!ok);
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["error"]["reason"], "trailing_data");
    }
}
