//! `--control FILE`: control requests from a file or FIFO, for automation and tests.
//!
//! Each line is one JSON object in the form of Flux's own client messages —
//! `{"type":"Configure",...}`, `{"type":"ForceEndTurn"}`, or `{"type":"CloseStream"}` meaning
//! "finish the stream" — optionally with `"at": SECONDS` to apply it once that much audio has
//! been sent. A FIFO is reopened after each writer closes, so `echo ... > fifo` works any
//! number of times; a regular file is read once.

use crate::protocol::ClientMessage;
use crate::session::Control;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Parses one control line.
pub fn parse_line(line: &str) -> Result<Control, String> {
    let mut value: Value =
        serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    let Value::Object(map) = &mut value else {
        return Err("not a JSON object".into());
    };
    let at = match map.remove("at") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 => Some(x),
            _ => return Err("`at` must be a number of seconds ≥ 0".into()),
        },
        Some(_) => return Err("`at` must be a number of seconds".into()),
    };
    let control = match ClientMessage::parse(&value.to_string()).map_err(|e| e.description)? {
        ClientMessage::Configure(c) => Control::Configure(c),
        ClientMessage::ForceEndTurn => Control::ForceEndTurn,
        ClientMessage::CloseStream => Control::Finish,
    };
    Ok(match at {
        Some(t) => Control::At(t, Box::new(control)),
        None => control,
    })
}

/// Starts a thread that reads `path` and sends each valid line's request. Invalid lines are
/// reported on stderr with their line number and skipped.
pub fn spawn(path: PathBuf, tx: mpsc::Sender<Control>) -> std::io::Result<()> {
    // Fail early (exit 2) on a missing file rather than in the background.
    std::fs::metadata(&path)?;
    std::thread::Builder::new()
        .name("flux-control".into())
        .spawn(move || read_loop(&path, &tx))?;
    Ok(())
}

fn read_loop(path: &Path, tx: &mpsc::Sender<Control>) {
    let fifo = is_fifo(path);
    let mut line_no = 0usize;
    loop {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!(
                    "flux: warning: cannot read --control {}: {e}",
                    path.display()
                );
                return;
            }
        };
        for line in BufReader::new(file).lines() {
            let Ok(line) = line else { break };
            line_no += 1;
            if line.trim().is_empty() {
                continue;
            }
            match parse_line(&line) {
                Ok(control) => {
                    if tx.blocking_send(control).is_err() {
                        return; // the session is over
                    }
                }
                Err(e) => eprintln!(
                    "flux: warning: --control {} line {line_no} skipped: {e}",
                    path.display()
                ),
            }
        }
        if !fifo || tx.is_closed() {
            return;
        }
    }
}

#[cfg(unix)]
fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path)
        .map(|m| m.file_type().is_fifo())
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn is_fifo(_path: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Configure, Thresholds};

    #[test]
    fn lines_are_flux_messages_with_an_optional_time() {
        assert_eq!(
            parse_line(r#"{"type":"ForceEndTurn"}"#).unwrap(),
            Control::ForceEndTurn
        );
        assert_eq!(
            parse_line(r#"{"type":"CloseStream"}"#).unwrap(),
            Control::Finish
        );
        let want = Control::Configure(Configure {
            thresholds: Some(Thresholds {
                eot_threshold: Some(0.9),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(
            parse_line(r#"{"type":"Configure","thresholds":{"eot_threshold":0.9},"at":2.5}"#)
                .unwrap(),
            Control::At(2.5, Box::new(want))
        );
        // Warnings quote a request in the user's words (issue 13): CloseStream, not Finish.
        let late = parse_line(r#"{"type":"CloseStream","at":30}"#).unwrap();
        assert_eq!(format!("{late:?}"), "CloseStream (at 30s)");
        let configure = parse_line(r#"{"type":"Configure","thresholds":{"eot_threshold":0.9}}"#);
        assert_eq!(
            format!("{:?}", configure.unwrap()),
            r#"Configure {"thresholds":{"eot_threshold":0.9}}"#
        );
        for bad in [
            "nope",
            "[]",
            r#"{"type":"KeepAlive"}"#,
            r#"{"type":"Configure","numerals":"yes"}"#,
            r#"{"type":"ForceEndTurn","at":-1}"#,
            r#"{"type":"ForceEndTurn","at":"soon"}"#,
        ] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
    }
}
