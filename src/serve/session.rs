//! One accepted connection: audio in, turn events out, control messages, faults, the log,
//! and the idle timeout (no audio for `--idle-timeout`: `Error` NET-0001, close 1011).
//!
//! The reading side (this task) decodes audio, runs the VAD and the turn machine, and queues
//! messages; a writer task sends them. The queue is bounded: a client that stops reading
//! makes the server stop reading from it, so memory stays flat whatever the client does.

mod faults;

use crate::protocol::messages::UNPARSABLE_CLIENT_MESSAGE;
use crate::protocol::{ClientMessage, Connected, Notice, ServerMessage, TurnInfo};
use crate::serve::asr::Recognizer;
use crate::serve::asr::stream::AsrStream;
use crate::serve::audio::{Decoder, Format};
use crate::serve::config::ActiveConfig;
use crate::serve::fault::ConnFaults;
use crate::serve::handshake::Accepted;
use crate::serve::log::Logger;
use crate::serve::script::Script;
use crate::serve::turns::{Settings, Span, Turns};
use crate::serve::vad::Vad;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Messages waiting for the writer; beyond this the session stops reading.
const QUEUE: usize = 64;
/// How long to wait for the client's reply after the server closes.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
pub const UNSUPPORTED_AUDIO: &str = "UNSUPPORTED_AUDIO_FORMAT";
pub const FORCE_END_TURN_NO_ACTIVE_TURN: &str = "FORCE_END_TURN_NO_ACTIVE_TURN";
/// The code and close of a connection that went quiet: Deepgram's documented idle close
/// (`1011`, `NET-0001`), announced with the fatal `Error` Flux sends before it closes.
pub const IDLE_CODE: &str = "NET-0001";
pub const IDLE_CLOSE: u16 = 1011;

/// Everything a session needs from the server.
pub struct Setup {
    pub conn: u64,
    pub request_id: String,
    pub accepted: Accepted,
    pub faults: ConnFaults,
    pub script: Arc<Script>,
    pub log: Option<Arc<Logger>>,
    /// `--asr`: the recognizer that supplies the words instead of the script.
    pub asr: Option<Arc<Recognizer>>,
    /// Close after this long without audio (`--idle-timeout`); `None` never does.
    pub idle_timeout: Option<Duration>,
    /// `--replay`: recorded messages instead of the turn engine.
    pub replay: Option<crate::serve::replay::Replayer>,
}

enum Out {
    Text(String, Instant),
    Close(Option<CloseFrame>),
    /// Close the TCP connection without a WebSocket close.
    Drop,
}

/// Where the session stands with its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// No more events, but keep reading (`stall` fault).
    Stalled,
    /// The server sent its close; waiting for the client's reply.
    Closing,
    /// Tear the connection down now.
    Dropping,
}

pub async fn run<S>(ws: WebSocketStream<S>, setup: Setup)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, mut stream) = ws.split();
    let (tx, rx) = mpsc::channel(QUEUE);
    let mut writer = tokio::spawn(write_loop(sink, rx, setup.faults.delay));
    let mut s = Session::new(setup, tx);
    s.start().await;
    let mut writer_done = false;
    let mut close_deadline: Option<Instant> = None;
    while s.phase != Phase::Dropping {
        if s.phase == Phase::Closing && close_deadline.is_none() {
            close_deadline = Some(Instant::now() + CLOSE_GRACE);
        }
        let deadline =
            close_deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        let idle = s.idle_deadline();
        tokio::select! {
            _ = tokio::time::sleep_until(idle.unwrap_or(deadline)), if idle.is_some() => {
                s.on_idle().await;
            }
            _ = &mut writer => {
                // The writer stops only when the socket failed: the client is gone.
                writer_done = true;
                s.log_close(None, "the connection failed while sending", "drop");
                break;
            }
            _ = tokio::time::sleep_until(deadline), if close_deadline.is_some() => break,
            update = s.asr_ready(), if s.asr_pending() => {
                if let Some(info) = update {
                    s.emit(ServerMessage::TurnInfo(info)).await;
                }
            }
            msg = stream.next() => match msg {
                None => {
                    s.log_close(None, "the connection ended without a close frame", "drop");
                    break;
                }
                Some(Err(e)) => {
                    s.on_read_error(&e).await;
                    if s.phase != Phase::Closing {
                        break;
                    }
                }
                Some(Ok(m)) => s.on_message(m).await,
            },
        }
    }
    // Let the writer send what is queued (and a pending close or drop), then end.
    drop(s);
    if !writer_done
        && tokio::time::timeout(CLOSE_GRACE, &mut writer)
            .await
            .is_err()
    {
        writer.abort();
    }
    drop(stream);
}

async fn write_loop<S>(
    mut sink: SplitSink<WebSocketStream<S>, Message>,
    mut rx: mpsc::Receiver<Out>,
    delay: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(out) = rx.recv().await {
        match out {
            Out::Text(text, produced) => {
                if !delay.is_zero() {
                    tokio::time::sleep_until(produced + delay).await;
                }
                if sink.send(Message::text(text)).await.is_err() {
                    return;
                }
            }
            Out::Close(frame) => {
                // Errors here mean the client closed first; nothing left to tell it.
                let _ = sink.send(Message::Close(frame)).await;
            }
            Out::Drop => {
                // Dropping the sink (and, in `run`, the stream) closes the TCP connection.
                let _ = sink.flush().await;
                return;
            }
        }
    }
    // The session is over; make sure a close we queued has left.
    let _ = sink.flush().await;
}

struct Session {
    conn: u64,
    request_id: String,
    config: ActiveConfig,
    faults: ConnFaults,
    script: Arc<Script>,
    log: Option<Arc<Logger>>,
    tx: mpsc::Sender<Out>,
    decoder: Decoder,
    /// Created once the sample rate is known (at once for raw audio, after a WAV header).
    vad: Option<(Vad, Turns)>,
    recognizer: Option<Arc<Recognizer>>,
    /// Created with the VAD when `--asr` is on.
    asr: Option<AsrStream>,
    samples: Vec<f32>,
    received_samples: u64,
    sequence: u64,
    phase: Phase,
    close_logged: bool,
    idle_timeout: Option<Duration>,
    /// When audio last arrived (the connection's start before any did).
    last_audio: Instant,
    replay: Option<crate::serve::replay::Replayer>,
}

impl Session {
    fn new(setup: Setup, tx: mpsc::Sender<Out>) -> Session {
        let Setup {
            conn,
            request_id,
            accepted,
            faults,
            script,
            log,
            asr,
            idle_timeout,
            replay,
        } = setup;
        let format = match (accepted.params.encoding, accepted.params.sample_rate) {
            (Some(encoding), Some(rate)) => Format::Raw { encoding, rate },
            _ => Format::Container,
        };
        Session {
            conn,
            request_id,
            config: ActiveConfig::from_params(&accepted.params, accepted.dialect),
            faults,
            script,
            log,
            tx,
            decoder: Decoder::new(format),
            vad: None,
            recognizer: asr,
            asr: None,
            samples: Vec::new(),
            received_samples: 0,
            sequence: 0,
            phase: Phase::Open,
            close_logged: false,
            idle_timeout,
            last_audio: Instant::now(),
            replay,
        }
    }

    /// When the connection counts as idle, while it is still one the server would close.
    fn idle_deadline(&self) -> Option<Instant> {
        let open = matches!(self.phase, Phase::Open | Phase::Stalled);
        self.idle_timeout
            .filter(|_| open)
            .map(|t| self.last_audio + t)
    }

    /// No audio for the idle timeout: the service's fatal `Error`, then its close.
    async fn on_idle(&mut self) {
        let secs = self.idle_timeout.unwrap_or_default().as_secs_f64();
        let description = format!(
            "No audio received for {secs} s, so the connection was closed. Keep sending audio \
             (silence during pauses) to keep a stream open."
        );
        self.fail(IDLE_CODE, &description, Some(IDLE_CLOSE)).await;
    }

    fn log(&self, kind: &str, fields: Value) {
        if let Some(log) = &self.log {
            log.write(self.conn, kind, fields);
        }
    }

    fn log_close(&mut self, code: Option<u16>, reason: &str, by: &str) {
        if !self.close_logged {
            self.close_logged = true;
            self.log("close", json!({"code": code, "reason": reason, "by": by}));
        }
    }

    fn received_seconds(&self) -> f64 {
        match self.decoder.rate() {
            Some(rate) => {
                let s = self.received_samples as f64 / f64::from(rate);
                (s * 1000.0).round() / 1000.0
            }
            None => 0.0,
        }
    }

    fn asr_pending(&self) -> bool {
        self.asr.as_ref().is_some_and(AsrStream::has_pending)
    }

    /// The deferred `Update` whose text is ready (pending forever without one).
    async fn asr_ready(&mut self) -> Option<TurnInfo> {
        match self.asr.as_mut() {
            Some(asr) => asr.ready().await,
            None => std::future::pending().await,
        }
    }

    /// Sends a turn engine event, its words from the recognizer when there is one.
    async fn emit_turn(&mut self, mut info: TurnInfo, span: Span) {
        if let Some(asr) = self.asr.as_mut()
            && !asr.on_event(&mut info, &span).await
        {
            return;
        }
        self.emit(ServerMessage::TurnInfo(info)).await;
    }

    fn settings(&self) -> Settings {
        Settings {
            eot_threshold: self.config.eot_threshold,
            eager_eot_threshold: self.config.eager_eot_threshold,
            eot_timeout_ms: self.config.eot_timeout_ms,
        }
    }

    async fn start(&mut self) {
        self.emit(ServerMessage::Connected(Connected::default()))
            .await;
        self.run_faults(0.0).await;
    }

    /// Numbers, stamps and queues one message (nothing once stalled or closing).
    async fn emit(&mut self, mut msg: ServerMessage) {
        if self.phase != Phase::Open {
            return;
        }
        if let ServerMessage::TurnInfo(t) = &mut msg
            && self.config.is_multilingual()
        {
            t.languages = Some(self.config.languages(t.transcript.is_empty()));
            t.languages_hinted = Some(self.config.language_hints.clone());
        }
        msg.set_sequence_id(self.sequence);
        msg.set_request_id(&self.request_id);
        self.sequence += 1;
        let mut value = msg.to_value();
        if self.faults.typeless
            && matches!(msg, ServerMessage::TurnInfo(_))
            && let Value::Object(map) = &mut value
        {
            map.remove("type");
        }
        self.send(Out::Text(value.to_string(), Instant::now()))
            .await;
    }

    async fn send(&mut self, out: Out) {
        if self.tx.send(out).await.is_err() {
            // The writer is gone, so is the client; `run` notices and ends.
            self.phase = Phase::Dropping;
        }
    }

    /// Sends a fatal `Error`, then closes (without a status when `close` is `None`).
    async fn fail(&mut self, code: &str, description: &str, close: Option<u16>) {
        self.emit(ServerMessage::Error(Notice::new(code, description)))
            .await;
        self.close(close, code).await;
    }

    async fn close(&mut self, code: Option<u16>, reason: &str) {
        if matches!(self.phase, Phase::Closing | Phase::Dropping) {
            return;
        }
        let frame = code.map(|c| CloseFrame {
            code: CloseCode::from(c),
            reason: close_reason(reason).into(),
        });
        self.log_close(code, reason, "server");
        self.send(Out::Close(frame)).await;
        if self.phase != Phase::Dropping {
            self.phase = Phase::Closing;
        }
    }

    async fn on_message(&mut self, msg: Message) {
        match msg {
            Message::Binary(bytes) => self.on_audio(&bytes).await,
            Message::Text(text) => self.on_control(text.as_str()).await,
            Message::Close(frame) => {
                let (code, reason) = match &frame {
                    Some(f) => (Some(u16::from(f.code)), f.reason.as_str().to_string()),
                    None => (None, String::new()),
                };
                self.log_close(code, &reason, "client");
                // tungstenite answers the close; `run` reads on until the stream ends.
                if self.phase == Phase::Open || self.phase == Phase::Stalled {
                    self.phase = Phase::Closing;
                }
            }
            // tungstenite queues the pong and flushes it on the next read or write.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }

    async fn on_read_error(&mut self, e: &tokio_tungstenite::tungstenite::Error) {
        use tokio_tungstenite::tungstenite::Error as E;
        match e {
            E::Capacity(why) => {
                let reason = format!("message too big: {why}");
                self.close(Some(1009), &reason).await;
            }
            E::ConnectionClosed | E::AlreadyClosed => {
                self.log_close(None, "closed", "client");
                self.phase = Phase::Dropping;
            }
            other => {
                self.log_close(None, &other.to_string(), "drop");
                self.phase = Phase::Dropping;
            }
        }
    }

    async fn on_audio(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.last_audio = Instant::now();
        }
        let audio_start = self.received_seconds();
        if self.phase != Phase::Open && self.phase != Phase::Stalled {
            self.log_audio(bytes.len(), audio_start, audio_start);
            return;
        }
        if bytes.is_empty() {
            self.log_audio(0, audio_start, audio_start);
            if self.phase == Phase::Open {
                self.fail(
                    UNPARSABLE_CLIENT_MESSAGE,
                    "Received an empty binary frame; send audio bytes, or CloseStream to end the \
                     stream",
                    None,
                )
                .await;
            }
            return;
        }
        let mut samples = std::mem::take(&mut self.samples);
        samples.clear();
        let decoded = self.decoder.decode(bytes, &mut samples);
        self.received_samples += samples.len() as u64;
        self.log_audio(bytes.len(), audio_start, self.received_seconds());
        if let Err(e) = decoded {
            self.samples = samples;
            if self.phase == Phase::Open {
                self.fail(UNSUPPORTED_AUDIO, &e.0, Some(1008)).await;
            }
            return;
        }
        let received = self.received_seconds();
        let timeout = self.config.eot_timeout_ms;
        if let Some(due) = self.replay.as_mut().map(|r| r.due(received, timeout)) {
            for m in due {
                self.emit(m).await;
            }
            self.run_faults(received).await;
            self.samples = samples;
            return;
        }
        if self.vad.is_none()
            && let Some(rate) = self.decoder.rate()
        {
            let vad = Vad::new(rate);
            if let Some(r) = &self.recognizer {
                self.asr = Some(AsrStream::new(
                    r.clone(),
                    rate,
                    crate::serve::vad::hop_len(rate),
                ));
            }
            self.vad = Some((vad, Turns::new(rate, self.script.clone())));
        }
        if let Some(asr) = self.asr.as_mut() {
            asr.push(&samples);
        }
        let settings = self.settings();
        for &sample in &samples {
            if self.phase != Phase::Open {
                // Stalled sessions skip the work: nothing they find would be sent.
                break;
            }
            let Some((vad, turns)) = &mut self.vad else {
                break;
            };
            let Some(voiced) = vad.push(sample) else {
                continue;
            };
            let events = turns.on_hop(voiced, &settings);
            let now = turns.processed_seconds();
            let span = turns.span();
            for e in events {
                self.emit_turn(e, span).await;
            }
            self.run_faults(now).await;
        }
        if let (Some(asr), Some((_, turns))) = (self.asr.as_mut(), self.vad.as_ref()) {
            asr.trim(&turns.span());
        }
        self.samples = samples;
    }

    fn log_audio(&self, bytes: usize, start: f64, end: f64) {
        self.log(
            "audio",
            json!({"bytes": bytes, "audio_start": start, "audio_end": end}),
        );
    }

    async fn on_control(&mut self, text: &str) {
        match serde_json::from_str::<Value>(text) {
            Ok(v) => self.log("control", json!({ "message": v })),
            Err(_) => self.log("control", json!({ "text": text })),
        }
        if self.phase != Phase::Open {
            return;
        }
        let msg = match ClientMessage::parse(text) {
            Ok(m) => m,
            Err(e) => {
                // As Flux does: a fatal Error, then a close without a status code.
                self.fail(e.code, &e.description, None).await;
                return;
            }
        };
        match msg {
            ClientMessage::Configure(c) => {
                let applied = self.config.apply(&c);
                // With --replay, the recorded answer, in order, while there are any.
                let recorded = self.replay.as_mut().and_then(|r| r.configure_answer());
                let reply = match (recorded, applied) {
                    (Some(m), _) => m,
                    (None, Ok(())) => ServerMessage::ConfigureSuccess(self.config.success()),
                    (None, Err(notice)) => ServerMessage::ConfigureFailure(*notice),
                };
                self.emit(reply).await;
            }
            ClientMessage::ForceEndTurn if self.replay.is_some() => {
                let received = self.received_seconds();
                let ended = self
                    .replay
                    .as_mut()
                    .map(|r| r.force_end(received))
                    .unwrap_or_default();
                if ended.is_empty() {
                    let warning = Notice::new(
                        FORCE_END_TURN_NO_ACTIVE_TURN,
                        "Received ForceEndTurn while no turn was active; the request was ignored.",
                    );
                    self.emit(ServerMessage::Warning(warning)).await;
                }
                for m in ended {
                    self.emit(m).await;
                }
            }
            ClientMessage::ForceEndTurn => {
                let ended = self
                    .vad
                    .as_mut()
                    .and_then(|(_, t)| t.force_end().map(|info| (info, t.span())));
                match ended {
                    Some((info, span)) => self.emit_turn(info, span).await,
                    None => {
                        let warning = Notice::new(
                            FORCE_END_TURN_NO_ACTIVE_TURN,
                            "Received ForceEndTurn while no turn was active; the request was \
                             ignored.",
                        );
                        self.emit(ServerMessage::Warning(warning)).await;
                    }
                }
            }
            ClientMessage::CloseStream => {
                // Flux reports the audio it has and closes without a status code; the open
                // turn is not finalized.
                let received = self.received_seconds();
                let update: Option<TurnInfo> = self
                    .vad
                    .as_mut()
                    .and_then(|(_, t)| t.final_update(received));
                if let Some(mut update) = update {
                    if let Some(asr) = &self.asr {
                        asr.fill_latest(&mut update);
                    }
                    self.emit(ServerMessage::TurnInfo(update)).await;
                }
                self.close(None, "CloseStream").await;
            }
        }
    }
}

/// A close reason must fit in 123 bytes; cut on a character boundary.
fn close_reason(reason: &str) -> String {
    let mut out = String::new();
    for c in reason.chars() {
        if out.len() + c.len_utf8() > 120 {
            break;
        }
        out.push(c);
    }
    out
}
