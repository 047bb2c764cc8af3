//! The timed faults (`--fault`) a session fires as its audio reaches them: drop, error,
//! stall, a malformed or unknown message (docs/serve.md, Faults).

use super::{Out, Phase, Session};
use crate::protocol::ServerMessage;
use crate::serve::fault::Action;
use serde_json::json;
use tokio::time::Instant;

impl Session {
    /// Fires the timed faults due at `seconds` of audio.
    pub(super) async fn run_faults(&mut self, seconds: f64) {
        for action in self.faults.due(seconds) {
            if self.phase != Phase::Open {
                return;
            }
            match action {
                Action::Drop => {
                    self.log_close(None, "fault: drop", "drop");
                    self.send(Out::Drop).await;
                    self.phase = Phase::Dropping;
                }
                Action::Error {
                    code,
                    description,
                    close,
                } => self.fail(&code, &description, Some(close)).await,
                Action::Stall => self.phase = Phase::Stalled,
                Action::Malformed => {
                    let text = r#"{"type":"TurnInfo","event":"Update","transcript":"#;
                    self.send(Out::Text(text.to_string(), Instant::now())).await;
                }
                Action::Unknown => {
                    let msg = json!({
                        "type": "FluxServeUnknown",
                        "description": "a message type Flux does not have, sent by --fault unknown"
                    });
                    self.emit(ServerMessage::Unknown(msg)).await;
                }
            }
        }
    }
}
