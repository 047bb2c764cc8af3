//! One accepted connection: audio in, turn events out, control messages, faults, the log,
//! and the idle timeout (no audio for `--idle-timeout`: `Error` NET-0001, close 1011).
//!
//! The reading side (this task) decodes audio, runs the VAD and the turn machine, and queues
//! messages; a writer task sends them. The queue is bounded: a client that stops reading
//! makes the server stop reading from it, so memory stays flat whatever the client does.

use crate::protocol::messages::UNPARSABLE_CLIENT_MESSAGE;
use crate::protocol::{ClientMessage, Connected, Notice, ServerMessage, TurnInfo};
use crate::serve::asr::Recognizer;
use crate::serve::asr::stream::AsrStream;
use crate::serve::audio::{Decoder, Format};
use crate::serve::config::ActiveConfig;
use crate::serve::fault::ConnFaults;
use crate::serve::handshake::Accepted;
use crate::serve::link::{self, Dialect, Link, Out, Phase};
use crate::serve::log::Logger;
use crate::serve::script::Script;
use crate::serve::turns::{Settings, Span, Turns};
use crate::serve::vad::Vad;
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

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

pub async fn run<S>(ws: WebSocketStream<S>, setup: Setup)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut setup = setup;
    let faults = std::mem::take(&mut setup.faults);
    let (link, connection) = link::open(ws, setup.conn, setup.log.clone(), faults);
    let mut s = Session::new(setup, link);
    s.start().await;
    connection.drive(s).await;
}

/// The recognizer finished a deferred `Update` (or found it stale: `None`): what the session
/// waits for besides the socket.
struct Wake(Option<Box<TurnInfo>>);

struct Session {
    request_id: String,
    config: ActiveConfig,
    script: Arc<Script>,
    link: Link,
    decoder: Decoder,
    /// Created once the sample rate is known (at once for raw audio, after a WAV header).
    vad: Option<(Vad, Turns)>,
    recognizer: Option<Arc<Recognizer>>,
    /// Created with the VAD when `--asr` is on.
    asr: Option<AsrStream>,
    samples: Vec<f32>,
    received_samples: u64,
    sequence: u64,
    idle_timeout: Option<Duration>,
    /// When audio last arrived (the connection's start before any did).
    last_audio: Instant,
    replay: Option<crate::serve::replay::Replayer>,
}

impl Session {
    fn new(setup: Setup, link: Link) -> Session {
        let Setup {
            request_id,
            accepted,
            script,
            asr,
            idle_timeout,
            replay,
            ..
        } = setup;
        let format = match (accepted.params.encoding, accepted.params.sample_rate) {
            (Some(encoding), Some(rate)) => Format::Raw { encoding, rate },
            _ => Format::Container,
        };
        Session {
            request_id,
            config: ActiveConfig::from_params(&accepted.params, accepted.dialect),
            script,
            link,
            decoder: Decoder::new(format),
            vad: None,
            recognizer: asr,
            asr: None,
            samples: Vec::new(),
            received_samples: 0,
            sequence: 0,
            idle_timeout,
            last_audio: Instant::now(),
            replay,
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
        link::fire_faults(self, 0.0).await;
    }

    /// Numbers, stamps and queues one message (nothing once stalled or closing).
    async fn emit(&mut self, mut msg: ServerMessage) {
        if self.link.phase != Phase::Open {
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
        if self.link.faults.typeless
            && matches!(msg, ServerMessage::TurnInfo(_))
            && let Value::Object(map) = &mut value
        {
            map.remove("type");
        }
        self.link
            .send(Out::Text(value.to_string(), Instant::now()))
            .await;
    }

    async fn on_audio(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.last_audio = Instant::now();
        }
        let audio_start = self.received_seconds();
        if self.link.phase != Phase::Open && self.link.phase != Phase::Stalled {
            self.link.log_audio(bytes.len(), audio_start, audio_start);
            return;
        }
        if bytes.is_empty() {
            self.link.log_audio(0, audio_start, audio_start);
            if self.link.phase == Phase::Open {
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
        self.link
            .log_audio(bytes.len(), audio_start, self.received_seconds());
        if let Err(e) = decoded {
            self.samples = samples;
            if self.link.phase == Phase::Open {
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
            link::fire_faults(self, received).await;
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
        // A hop at a time (the phase changes only when a hop's events are handled).
        let mut rest: &[f32] = &samples;
        while !rest.is_empty() {
            if self.link.phase != Phase::Open {
                // Stalled sessions skip the work: nothing they find would be sent.
                break;
            }
            let Some((vad, turns)) = &mut self.vad else {
                break;
            };
            let (taken, verdict) = vad.push_until_hop(rest);
            rest = &rest[taken..];
            let Some(voiced) = verdict else {
                continue;
            };
            let events = turns.on_hop(voiced, &settings);
            let now = turns.processed_seconds();
            let span = turns.span();
            for e in events {
                self.emit_turn(e, span).await;
            }
            link::fire_faults(self, now).await;
        }
        if let (Some(asr), Some((_, turns))) = (self.asr.as_mut(), self.vad.as_ref()) {
            asr.trim(&turns.span());
        }
        self.samples = samples;
    }

    async fn on_control(&mut self, text: &str) {
        match serde_json::from_str::<Value>(text) {
            Ok(v) => self.link.log("control", json!({ "message": v })),
            Err(_) => self.link.log("control", json!({ "text": text })),
        }
        if self.link.phase != Phase::Open {
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
                self.link.close(None, "CloseStream").await;
            }
        }
    }
}

impl Dialect for Session {
    type Wake = Wake;

    fn link(&mut self) -> &mut Link {
        &mut self.link
    }

    async fn on_message(&mut self, msg: Message) {
        match msg {
            Message::Binary(bytes) => self.on_audio(&bytes).await,
            Message::Text(text) => self.on_control(text.as_str()).await,
            Message::Close(frame) => self.link.on_close_frame(frame.as_ref()),
            // tungstenite queues the pong and flushes it on the next read or write.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }

    fn wake(&mut self) -> Option<impl Future<Output = Wake> + Send> {
        let asr = self.asr.as_mut().filter(|a| a.has_pending())?;
        Some(async move { Wake(asr.ready().await.map(Box::new)) })
    }

    async fn on_wake(&mut self, Wake(update): Wake) {
        if let Some(info) = update {
            self.emit(ServerMessage::TurnInfo(*info)).await;
        }
    }

    fn idle_deadline(&self) -> Option<Instant> {
        let open = self.link.receiving();
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

    /// Sends a fatal `Error`, then closes (without a status when `close` is `None`).
    async fn fail(&mut self, code: &str, description: &str, close: Option<u16>) {
        self.emit(ServerMessage::Error(Notice::new(code, description)))
            .await;
        self.link.close(close, code).await;
    }

    fn malformed(&self) -> &'static str {
        r#"{"type":"TurnInfo","event":"Update","transcript":"#
    }

    async fn send_unknown(&mut self) {
        let msg = json!({
            "type": "FluxServeUnknown",
            "description": "a message type Flux does not have, sent by --fault unknown"
        });
        self.emit(ServerMessage::Unknown(msg)).await;
    }
}
