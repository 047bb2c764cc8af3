//! What the live view shows, as a pure function of the events seen so far: finished turns
//! (printed once, then left alone), the open turn and the status line. Nothing here touches a
//! terminal, so every layout decision can be tested at any width.

use super::lines::span;
pub use super::lines::{Line, Span, Tone, plain};
pub use super::status::{Connection, Status};
use super::text::{sanitize, truncate, width, wrap};
use crate::event::{ClientEvent, Event};
use crate::protocol::{ServerMessage, TurnEvent, TurnInfo};

/// Where the open turn is in Flux's turn state machine, as people should see it.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnState {
    Speaking,
    /// EagerEndOfTurn: the turn may be over (a voice agent would start drafting a reply).
    EagerEnd {
        confidence: f64,
    },
    /// TurnResumed: speech went on after an EagerEndOfTurn.
    Resumed,
}

#[derive(Debug, Clone, PartialEq)]
struct OpenTurn {
    index: u64,
    start: f64,
    end: f64,
    text: String,
    state: TurnState,
}

/// The whole state of the view.
#[derive(Debug, Default)]
pub struct View {
    pub status: Status,
    open: Option<OpenTurn>,
    /// Show warnings as lines in the view (stderr is this terminal, so the view owns it).
    pub notes: bool,
    /// The eot_threshold in force: from the flags, then from each ConfigureSuccess. The `+`
    /// and `-` keys step from it.
    pub eot_threshold: f64,
}

impl View {
    /// Takes one event; returns the permanent lines it produced, in order.
    pub fn apply(&mut self, event: &Event) -> Vec<Line> {
        let mut lines = Vec::new();
        match event {
            Event::Server(r) => match &r.message {
                ServerMessage::Connected(c) => {
                    self.status.connection = Some(Connection::Streaming);
                    if self.status.request_id.is_none() && !c.request_id.is_empty() {
                        self.status.request_id = Some(sanitize(&c.request_id));
                    }
                }
                ServerMessage::TurnInfo(t) => self.turn(t, &mut lines),
                ServerMessage::Warning(n)
                    if n.code.as_deref() != Some("FORCE_END_TURN_NO_ACTIVE_TURN") =>
                {
                    self.note(&mut lines, "server warning", &n.summary());
                }
                ServerMessage::ConfigureFailure(n) => {
                    self.note(&mut lines, "configure failed", &n.summary());
                }
                ServerMessage::ConfigureSuccess(c) => {
                    if let Some(eot) = c.thresholds.eot_threshold {
                        self.eot_threshold = eot;
                    }
                    let t = &c.thresholds;
                    let eager = t
                        .eager_eot_threshold
                        .map_or(String::new(), |e| format!(", eager {e}"));
                    self.note(
                        &mut lines,
                        "configuration applied",
                        &format!(
                            "eot_threshold {}{eager}, {} keyterm(s)",
                            t.eot_threshold.map_or("-".into(), |x| x.to_string()),
                            c.keyterms.len()
                        ),
                    );
                }
                // The error itself is printed on stderr when the program ends.
                ServerMessage::Error(_) => self.status.connection = Some(Connection::Failed),
                _ => {}
            },
            Event::Client(c) => match c {
                ClientEvent::Connected {
                    provider,
                    model,
                    request_id,
                    ..
                } => {
                    self.status.provider = Some(sanitize(provider));
                    self.status.model = Some(sanitize(model));
                    self.status.request_id = request_id.as_deref().map(sanitize);
                    self.status.connection = Some(Connection::Upgraded);
                }
                ClientEvent::Reconnecting {
                    attempt,
                    max_attempts,
                    planned,
                    ..
                } => {
                    self.status.connection = Some(Connection::Reconnecting {
                        attempt: *attempt,
                        max_attempts: *max_attempts,
                        planned: *planned,
                    });
                }
                ClientEvent::Reconnected {
                    request_id,
                    replayed_seconds,
                    ..
                } => {
                    self.status.reconnects += 1;
                    self.status.connection = Some(Connection::Upgraded);
                    if let Some(id) = request_id {
                        self.status.request_id = Some(sanitize(id));
                    }
                    let id = request_id
                        .as_deref()
                        .map(|id| format!(" (request id {})", sanitize(id)))
                        .unwrap_or_default();
                    let replay = if *replayed_seconds > 0.0 {
                        format!(", {replayed_seconds:.1}s of the open turn sent again")
                    } else {
                        String::new()
                    };
                    lines.push(vec![span(format!("-- reconnected{id}{replay}"), Tone::Dim)]);
                }
                ClientEvent::AudioFinished {
                    reason,
                    audio_seconds,
                    ..
                } => {
                    self.status.audio = self.status.audio.max(*audio_seconds);
                    self.status.connection = Some(Connection::Finishing {
                        reason: reason.clone(),
                    });
                }
                ClientEvent::UnconfirmedTurn {
                    turn_index,
                    transcript,
                    audio_window_start,
                    audio_window_end,
                    words,
                    reason,
                    ..
                } => {
                    self.open = None;
                    let why = match reason.as_str() {
                        "stream_closed" => "stream closed",
                        "server_error" => "server error",
                        _ => "connection lost",
                    };
                    let (start, end) = span_of(words, *audio_window_start, *audio_window_end);
                    let text = sanitize(transcript);
                    if !text.is_empty() {
                        lines.push(turn_line(
                            *turn_index,
                            start,
                            end,
                            &text,
                            span(format!("(unconfirmed: {why})"), Tone::Warn),
                        ));
                    }
                }
                ClientEvent::Warning { message, .. } => self.note(&mut lines, "warning", message),
                // The summary is printed on stderr after the view closes; events added later
                // show nothing until the view learns them.
                _ => {}
            },
        }
        lines
    }

    fn note(&self, lines: &mut Vec<Line>, what: &str, text: &str) {
        if self.notes {
            lines.push(vec![span(
                format!("flux: {what}: {}", sanitize(text)),
                Tone::Warn,
            )]);
        }
    }

    fn turn(&mut self, t: &TurnInfo, lines: &mut Vec<Line>) {
        self.status.audio = self.status.audio.max(t.audio_window_end);
        let text = sanitize(&t.transcript);
        // A new index without an EndOfTurn for the old one: keep what the old one said.
        if let Some(old) = self.open.take_if(|o| o.index != t.turn_index)
            && !old.text.is_empty()
        {
            let tag = span("(no EndOfTurn)", Tone::Warn);
            lines.push(turn_line(old.index, old.start, old.end, &old.text, tag));
        }
        let (start, end) = span_of(&t.words, t.audio_window_start, t.audio_window_end);
        match &t.event {
            TurnEvent::EndOfTurn => {
                self.open = None;
                if !text.is_empty() {
                    let trigger = t
                        .trigger
                        .as_ref()
                        .map(|tr| format!(" {}", sanitize(tr.as_str())))
                        .unwrap_or_default();
                    // flux-general-multi says which languages it heard.
                    let languages = t
                        .languages
                        .as_ref()
                        .filter(|l| !l.is_empty())
                        .map(|l| format!(" [{}]", sanitize(&l.join(","))))
                        .unwrap_or_default();
                    let meta = span(
                        format!("({:.2}{trigger}){languages}", t.end_of_turn_confidence),
                        Tone::Dim,
                    );
                    lines.push(turn_line(t.turn_index, start, end, &text, meta));
                }
                return;
            }
            // Between turns Flux sends Updates with nothing in them: no turn is open.
            TurnEvent::Update if self.open.is_none() && text.is_empty() => return,
            _ => {}
        }
        let open = self.open.get_or_insert_with(|| OpenTurn {
            index: t.turn_index,
            start,
            end,
            text: String::new(),
            state: TurnState::Speaking,
        });
        open.text = text;
        open.start = open.start.min(start);
        open.end = end;
        match &t.event {
            TurnEvent::StartOfTurn => open.state = TurnState::Speaking,
            TurnEvent::EagerEndOfTurn => {
                open.state = TurnState::EagerEnd {
                    confidence: t.end_of_turn_confidence,
                }
            }
            TurnEvent::TurnResumed => open.state = TurnState::Resumed,
            _ => {}
        }
    }

    /// The open turn as it stands, for when the view closes before the turn ended.
    pub fn take_open_line(&mut self, tag: &str) -> Option<Line> {
        let o = self.open.take()?;
        (!o.text.is_empty())
            .then(|| turn_line(o.index, o.start, o.end, &o.text, span(tag, Tone::Warn)))
    }

    /// The redrawn region: the open turn's rows and the status row, each at most `width - 1`
    /// columns (the last column is left free: a character there makes some terminals wrap
    /// early, and widths of some emoji differ between terminals), and never more rows than
    /// `height - 1`, so the region can always be reached by moving the cursor up.
    pub fn region(&self, width: u16, height: u16, elapsed: Option<f64>) -> Vec<Line> {
        let cols = usize::from(width).saturating_sub(1).max(1);
        let max_rows = usize::from(height).saturating_sub(1).max(1);
        let mut rows = if max_rows >= 2 {
            self.open_rows(cols, max_rows - 1)
        } else {
            Vec::new()
        };
        rows.push(self.status.row(cols, elapsed));
        rows
    }

    fn open_rows(&self, cols: usize, max_rows: usize) -> Vec<Line> {
        let Some(o) = &self.open else {
            let waiting = match &self.status.connection {
                Some(Connection::Streaming) => "listening…",
                _ => "",
            };
            return vec![vec![span(waiting, Tone::Dim)]];
        };
        let (label, tone) = match &o.state {
            TurnState::Speaking => ("speaking".to_string(), Tone::Good),
            TurnState::EagerEnd { confidence } => (format!("end? {confidence:.2}"), Tone::Warn),
            TurnState::Resumed => ("resumed".to_string(), Tone::Accent),
        };
        let number = span(format!("#{} ", o.index + 1), Tone::Strong);
        let state = span(format!("[{label}]"), tone);
        let mut header = vec![
            number.clone(),
            span(format!("{} ", clock(o.start)), Tone::Dim),
            state.clone(),
            span(" ", Tone::Plain),
        ];
        if width(&plain(&header)) * 2 > cols {
            // Narrow screen: the state matters more than the start time.
            header = vec![number, state, span(" ", Tone::Plain)];
        }
        let hw = width(&plain(&header));
        let mut out = Vec::new();
        let (first, indent, text_rows) = if hw * 2 <= cols {
            // Continuation rows hang under the text.
            (cols - hw, hw, max_rows)
        } else if cols.saturating_sub(hw) >= MIN_FIRST_ROW {
            (cols - hw, 0, max_rows)
        } else {
            // Too narrow for text beside the header: the header gets a row of its own.
            out.push(vec![span(
                truncate(plain(&header).trim_end(), cols),
                Tone::Strong,
            )]);
            header.clear();
            (cols, 0, max_rows.saturating_sub(1).max(1))
        };
        let rest = cols - indent;
        for (i, row) in tail_rows(&o.text, first, rest, text_rows)
            .into_iter()
            .enumerate()
        {
            if i == 0 {
                let mut line = header.clone();
                line.push(span(row, Tone::Plain));
                out.push(line);
            } else {
                out.push(vec![
                    span(" ".repeat(indent), Tone::Plain),
                    span(row, Tone::Plain),
                ]);
            }
        }
        out.truncate(max_rows);
        out
    }
}

/// Wraps `text` into at most `max_rows` rows; when it is longer, the end of the turn is kept
/// (the part still changing) behind a `…`.
fn tail_rows(text: &str, first: usize, rest: usize, max_rows: usize) -> Vec<String> {
    let mut rows = wrap(text, first, rest);
    if rows.len() <= max_rows {
        return rows;
    }
    let all = wrap(text, rest, rest);
    for keep in (1..=max_rows).rev() {
        let tail = all[all.len().saturating_sub(keep)..].join(" ");
        rows = wrap(&format!("… {tail}"), first, rest);
        if rows.len() <= max_rows {
            return rows;
        }
    }
    rows.truncate(max_rows);
    rows
}

/// Narrowest first row worth putting text in beside the turn's header.
const MIN_FIRST_ROW: usize = 8;

/// A permanent line for a finished turn: `#N 0:01.2-0:03.4  text  (meta)`.
fn turn_line(index: u64, start: f64, end: f64, text: &str, meta: Span) -> Line {
    vec![
        span(format!("#{} ", index + 1), Tone::Strong),
        span(format!("{}-{} ", clock(start), clock(end)), Tone::Dim),
        span(format!(" {text}  "), Tone::Plain),
        meta,
    ]
}

/// The turn's speech: from its first word to its last where the words carry times, else
/// the audio window the server reported.
fn span_of(words: &[crate::protocol::Word], start: f64, end: f64) -> (f64, f64) {
    let first = words.iter().find_map(|w| w.start).unwrap_or(start);
    let last = words.iter().rev().find_map(|w| w.end).unwrap_or(end);
    (first, last.max(first))
}

/// Seconds as `m:ss.s` (hours add a field), the same width through a long session.
pub fn clock(secs: f64) -> String {
    let secs = if secs.is_finite() { secs.max(0.0) } else { 0.0 };
    let tenths = (secs * 10.0).round() as u64;
    let (h, rem) = (tenths / 36_000, tenths % 36_000);
    let (m, t) = (rem / 600, rem % 600);
    if h > 0 {
        format!("{h}:{m:02}:{:02}.{}", t / 10, t % 10)
    } else {
        format!("{m}:{:02}.{}", t / 10, t % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ServerMessage;

    fn server(json: &str) -> Event {
        Event::Server(ServerMessage::parse(json).unwrap())
    }

    fn ti(event: &str, index: u64, text: &str, end: f64) -> Event {
        server(&format!(
            r#"{{"type":"TurnInfo","event":"{event}","turn_index":{index},"audio_window_start":0.5,"audio_window_end":{end},"transcript":{},"end_of_turn_confidence":0.83,"trigger":"model"}}"#,
            serde_json::to_string(text).unwrap()
        ))
    }

    fn connected() -> Event {
        Event::Client(ClientEvent::Connected {
            provider: "deepgram".into(),
            url: "ws://127.0.0.1:1/v2/listen".into(),
            request_id: Some("0123456789abcdef".into()),
            model: "flux-general-en".into(),
            encoding: "linear16".into(),
            sample_rate: 16000,
        })
    }

    fn texts(lines: &[Line]) -> Vec<String> {
        lines.iter().map(plain).collect()
    }

    #[test]
    fn turn_lifecycle_shows_states_then_a_permanent_line() {
        let mut v = View::default();
        assert!(v.apply(&connected()).is_empty());
        v.apply(&server(r#"{"type":"Connected","request_id":"x"}"#));
        assert!(v.apply(&ti("Update", 0, "", 0.25)).is_empty());
        assert_eq!(texts(&v.region(80, 24, None))[0], "listening…");
        v.apply(&ti("StartOfTurn", 0, "hello", 0.75));
        assert_eq!(
            texts(&v.region(80, 24, None))[0],
            "#1 0:00.5 [speaking] hello"
        );
        v.apply(&ti("EagerEndOfTurn", 0, "hello there", 1.5));
        assert_eq!(
            texts(&v.region(80, 24, None))[0],
            "#1 0:00.5 [end? 0.83] hello there"
        );
        v.apply(&ti("TurnResumed", 0, "hello there you", 1.75));
        v.apply(&ti("Update", 0, "hello there you all", 2.0));
        assert_eq!(
            texts(&v.region(80, 24, None))[0],
            "#1 0:00.5 [resumed] hello there you all"
        );
        let done = v.apply(&ti("EndOfTurn", 0, "hello there you all", 2.25));
        assert_eq!(
            texts(&done),
            vec!["#1 0:00.5-0:02.3  hello there you all  (0.83 model)"]
        );
        assert_eq!(texts(&v.region(80, 24, None))[0], "listening…");
    }

    #[test]
    fn multilingual_turns_show_languages_and_configure_answers_move_the_threshold() {
        let mut v = View {
            notes: true,
            eot_threshold: 0.7,
            ..View::default()
        };
        let done = v.apply(&server(
            r#"{"type":"TurnInfo","event":"EndOfTurn","turn_index":0,"audio_window_start":0.0,"audio_window_end":1.0,"transcript":"hola","end_of_turn_confidence":0.8,"trigger":"model","languages":["es","en"]}"#,
        ));
        assert_eq!(
            texts(&done),
            vec!["#1 0:00.0-0:01.0  hola  (0.80 model) [es,en]"]
        );
        let note = v.apply(&server(
            r#"{"type":"ConfigureSuccess","thresholds":{"eot_threshold":0.75,"eot_timeout_ms":5000},"keyterms":[]}"#,
        ));
        assert_eq!(v.eot_threshold, 0.75);
        assert_eq!(
            texts(&note),
            vec!["flux: configuration applied: eot_threshold 0.75, 0 keyterm(s)"]
        );
    }

    #[test]
    fn status_line_fits_any_width_dropping_least_important_parts() {
        let mut v = View::default();
        v.status.keys = true;
        v.status.total = Some(9.96);
        v.status.mic_db = Some(-23.4);
        v.apply(&connected());
        v.apply(&server(r#"{"type":"Connected","request_id":"x"}"#));
        v.apply(&ti("Update", 0, "", 3.0));
        let wide = plain(v.region(200, 24, Some(1.5)).last().unwrap());
        assert_eq!(
            wide,
            "[streaming] · deepgram flux-general-en · req 0123456789abcdef · audio 0:03.0 / 0:10.0 2.0x · mic -23 dB [####..] · reconnects 0 · q quit, e end turn, +/- eot"
        );
        for w in [1u16, 5, 10, 20, 40, 60, 80, 100] {
            let row = plain(v.region(w, 24, Some(1.5)).last().unwrap());
            assert!(width(&row) < usize::from(w).max(2), "{w}: {row:?}");
        }
        let narrow = plain(v.region(40, 24, None).last().unwrap());
        assert_eq!(narrow, "[streaming] · 0:03.0/0:10.0");
        let medium = plain(v.region(80, 24, Some(1.5)).last().unwrap());
        assert_eq!(
            medium,
            // Issue 13: the key hints show (short) at 80 columns, before `reconnects 0`.
            "[streaming] · flux-general-en · 0:03.0/0:10.0 2.0x · mic -23 dB · keys q e +/-"
        );
        let wider = plain(v.region(100, 24, Some(1.5)).last().unwrap());
        assert_eq!(
            wider,
            "[streaming] · flux-general-en · 0:03.0/0:10.0 2.0x · mic -23 dB · reconnects 0 · keys q e +/-"
        );
    }

    #[test]
    fn long_open_turn_wraps_under_the_text_and_keeps_its_end_on_short_screens() {
        let mut v = View::default();
        let words: Vec<String> = (1..=40).map(|i| format!("w{i}")).collect();
        v.apply(&ti("StartOfTurn", 2, &words.join(" "), 9.0));
        let rows = texts(&v.region(50, 24, None));
        assert!(
            rows[0].starts_with("#3 0:00.5 [speaking] w1 w2 w3"),
            "{rows:?}"
        );
        assert!(
            rows[1].starts_with(&format!("{}w10", " ".repeat(21))),
            "{rows:?}"
        );
        for r in &rows {
            assert!(width(r) <= 49, "{r:?}");
        }
        // Four rows of screen: two for the turn, one status, one spare. Narrow, so the
        // header drops the start time.
        let rows = texts(&v.region(30, 4, None));
        assert_eq!(rows.len(), 3);
        assert!(rows[0].starts_with("#3 [speaking] … "), "{rows:?}");
        assert!(rows[1].ends_with("w40"), "{rows:?}");
    }

    #[test]
    fn narrow_screens_drop_the_hanging_indent() {
        let mut v = View::default();
        v.apply(&ti("StartOfTurn", 0, "alpha beta gamma delta", 1.0));
        let rows = texts(&v.region(16, 24, None));
        for r in &rows {
            assert!(width(r) <= 15, "{r:?}");
        }
        assert_eq!(rows[0], "#1 [speaking]");
        assert_eq!(rows[1], "alpha beta");
        assert_eq!(rows[2], "gamma delta");
    }

    #[test]
    fn server_text_is_sanitized_everywhere() {
        let mut v = View {
            notes: true,
            ..View::default()
        };
        v.apply(&ti("StartOfTurn", 0, "a\u{1b}[2Jb\nc", 1.0));
        assert_eq!(
            texts(&v.region(80, 24, None))[0],
            "#1 0:00.5 [speaking] ab c"
        );
        let note = v.apply(&server(
            r#"{"type":"Warning","code":"X","description":"bad\u001b]0;title\u0007"}"#,
        ));
        assert_eq!(texts(&note), vec!["flux: server warning: X: bad"]);
    }

    #[test]
    fn unconfirmed_and_abandoned_turns_stay_visible() {
        let mut v = View::default();
        v.apply(&ti("StartOfTurn", 0, "first", 1.0));
        let lines = v.apply(&ti("StartOfTurn", 1, "second", 2.0));
        assert_eq!(
            texts(&lines),
            vec!["#1 0:00.5-0:01.0  first  (no EndOfTurn)"]
        );
        let lines = v.apply(&Event::Client(ClientEvent::UnconfirmedTurn {
            turn_index: 1,
            transcript: "second words".into(),
            audio_window_start: 1.0,
            audio_window_end: 2.5,
            words: vec![],
            confirmed: false,
            reason: "stream_closed".into(),
        }));
        assert_eq!(
            texts(&lines),
            vec!["#2 0:01.0-0:02.5  second words  (unconfirmed: stream closed)"]
        );
        assert!(v.take_open_line("x").is_none());
    }

    #[test]
    fn reconnects_are_shown_counted_and_announced() {
        let mut v = View::default();
        v.apply(&connected());
        v.apply(&Event::Client(ClientEvent::Reconnecting {
            attempt: 1,
            max_attempts: 5,
            delay_ms: 250,
            reason: "connection lost".into(),
            audio_seconds: 3.0,
            planned: false,
        }));
        let status = plain(v.region(200, 24, None).last().unwrap());
        assert!(status.starts_with("[reconnecting 1/5] · "), "{status}");
        let lines = v.apply(&Event::Client(ClientEvent::Reconnected {
            attempt: 1,
            request_id: Some("new-id".into()),
            resume_from: 2.0,
            replayed_seconds: 1.0,
            turn_offset: 1,
        }));
        assert_eq!(
            texts(&lines),
            vec!["-- reconnected (request id new-id), 1.0s of the open turn sent again"]
        );
        let status = plain(v.region(200, 24, None).last().unwrap());
        assert!(
            status.contains("req new-id") && status.contains("reconnects 1"),
            "{status}"
        );
        // SageMaker's planned move to the next stream is no attempt: no count shown.
        v.apply(&Event::Client(ClientEvent::Reconnecting {
            attempt: 0,
            max_attempts: 5,
            delay_ms: 0,
            reason: "moving to the next stream".into(),
            audio_seconds: 9.0,
            planned: true,
        }));
        let status = plain(v.region(200, 24, None).last().unwrap());
        assert!(status.starts_with("[next stream] · "), "{status}");
    }

    #[test]
    fn clock_formats() {
        assert_eq!(clock(0.0), "0:00.0");
        assert_eq!(clock(62.34), "1:02.3");
        assert_eq!(clock(3725.0), "1:02:05.0");
        assert_eq!(clock(f64::NAN), "0:00.0");
    }
}
