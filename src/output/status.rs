//! Messages for people on stderr: connection, warnings, turns left unconfirmed.
//! Never fails the session: a closed stderr only silences it. Every string that came from a
//! server or a URL (hosts, request ids, reasons, warning texts) passes the one sanitizer.

use super::Sink;
use crate::event::{ClientEvent, Event};
use crate::protocol::ServerMessage;
use crate::protocol::sanitize::sanitize_max as sanitize;
use std::io::{self, Write};

pub struct StatusSink<W: Write + Send> {
    err: W,
}

impl<W: Write + Send> StatusSink<W> {
    pub fn new(err: W) -> Self {
        StatusSink { err }
    }

    fn say(&mut self, text: &str) {
        let _ = writeln!(self.err, "flux: {text}");
        let _ = self.err.flush();
    }
}

impl<W: Write + Send> Sink for StatusSink<W> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Client(ClientEvent::Connected {
                provider,
                url,
                request_id,
                model,
                ..
            }) => {
                let host = url::Url::parse(url)
                    .ok()
                    .and_then(|u| {
                        let host = u.host_str()?.to_string();
                        Some(match u.port() {
                            Some(p) => format!("{host}:{p}"),
                            None => host,
                        })
                    })
                    .unwrap_or_else(|| provider.clone());
                let id = request_id
                    .as_deref()
                    .map(|id| format!(", request id {}", sanitize(id, 100)))
                    .unwrap_or_default();
                self.say(&format!(
                    "connected to {} ({}, {}{id})",
                    sanitize(&host, 200),
                    sanitize(provider, 50),
                    sanitize(model, 100)
                ));
            }
            Event::Client(ClientEvent::Reconnecting {
                reason,
                planned: true,
                ..
            }) => {
                // The reason says what happens ("moving to the next stream …").
                self.say(&sanitize(reason, 300));
            }
            Event::Client(ClientEvent::Reconnecting {
                attempt,
                max_attempts,
                delay_ms,
                reason,
                ..
            }) => {
                self.say(&format!(
                    "{}; reconnecting in {:.1}s (attempt {attempt} of {max_attempts})",
                    sanitize(reason, 300),
                    *delay_ms as f64 / 1000.0
                ));
            }
            Event::Client(ClientEvent::Reconnected {
                request_id,
                replayed_seconds,
                ..
            }) => {
                let id = request_id
                    .as_deref()
                    .map(|id| format!(" (request id {})", sanitize(id, 100)))
                    .unwrap_or_default();
                self.say(&format!(
                    "reconnected{id}; sending the open turn's {replayed_seconds:.2}s of audio again"
                ));
            }
            Event::Client(ClientEvent::Warning { message, .. }) => {
                // Client warnings may quote a server (a message that is not JSON).
                self.say(&format!("warning: {}", sanitize(message, 600)));
            }
            Event::Client(ClientEvent::UnconfirmedTurn {
                turn_index, reason, ..
            }) => {
                let why = match reason.as_str() {
                    "stream_closed" => "the server closed the stream",
                    "server_error" => "the server reported an error",
                    _ => "the connection was lost",
                };
                self.say(&format!(
                    "warning: {why} before turn {turn_index} ended; its last transcript is printed but was not confirmed by EndOfTurn"
                ));
            }
            Event::Server(r) => match &r.message {
                ServerMessage::Warning(n)
                    if n.code.as_deref() != Some("FORCE_END_TURN_NO_ACTIVE_TURN") =>
                {
                    self.say(&format!("server warning: {}", sanitize(&n.summary(), 300)));
                }
                ServerMessage::ConfigureSuccess(c) => {
                    let t = &c.thresholds;
                    let num = |x: Option<f64>| x.map_or("-".to_string(), |x| x.to_string());
                    self.say(&format!(
                        "configuration applied: eot_threshold {}, eager_eot_threshold {}, \
                         eot_timeout_ms {}, {} keyterm(s){}{}",
                        num(t.eot_threshold),
                        num(t.eager_eot_threshold),
                        t.eot_timeout_ms.map_or("-".to_string(), |x| x.to_string()),
                        c.keyterms.len(),
                        c.language_hints
                            .as_ref()
                            .map(|l| format!(", language hints [{}]", sanitize(&l.join(","), 100)))
                            .unwrap_or_default(),
                        c.numerals
                            .map(|n| format!(", numerals {n}"))
                            .unwrap_or_default(),
                    ));
                }
                ServerMessage::ConfigureFailure(n) => {
                    self.say(&format!(
                        "configure failed: {}",
                        sanitize(&n.summary(), 300)
                    ));
                }
                _ => {}
            },
            Event::Client(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_text_in_status_lines_is_sanitized() {
        let mut err = Vec::new();
        let mut sink = StatusSink::new(&mut err);
        sink.event(&Event::Client(ClientEvent::Warning {
            code: "malformed_message".into(),
            message: "server sent \u{202E}evil\u{1b}]52;c;eA==\u{7} text".into(),
        }))
        .unwrap();
        sink.event(&Event::Client(ClientEvent::Reconnecting {
            attempt: 1,
            max_attempts: 3,
            delay_ms: 500,
            reason: "closed: \u{1b}[2Jbye".into(),
            audio_seconds: 1.0,
            planned: false,
        }))
        .unwrap();
        sink.event(&Event::Client(ClientEvent::Reconnecting {
            attempt: 0,
            max_attempts: 3,
            delay_ms: 0,
            reason: "SageMaker caps a stream at 30 minutes: moving to the next stream".into(),
            audio_seconds: 1.0,
            planned: true,
        }))
        .unwrap();
        let text = String::from_utf8(err).unwrap();
        assert_eq!(
            text,
            "flux: warning: server sent evil text\n\
             flux: closed: bye; reconnecting in 0.5s (attempt 1 of 3)\n\
             flux: SageMaker caps a stream at 30 minutes: moving to the next stream\n"
        );
    }
}
