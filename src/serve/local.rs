//! The emulator in process, for `--provider local`: the recognizer loaded once, and each
//! connection served over an in-memory byte stream instead of a socket.
//!
//! Everything after the bytes is `flux serve --asr`'s own code: the same upgrade and
//! handshake verdict (the Deepgram dialect's parameter checks, its 400 bodies), `Connected`,
//! `Configure` with `ConfigureSuccess`/`ConfigureFailure`, `ForceEndTurn`, `CloseStream`, the
//! turn engine and the recognizer's pool. What a socket server needs and this does not is
//! left out: no key (nothing else can reach it), no log, no faults, no idle timeout (the
//! client is flux itself, which never abandons a connection).

use super::asr::{AsrError, AsrOptions, Recognizer};
use super::{Shared, accept, grant, script};
use crate::transport::local::Acceptor;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};

/// The in-process server: share it (an `Arc`) between every stream of the process.
pub struct InProcess {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess")
            .field("recognizer", &self.shared.asr)
            .finish_non_exhaustive()
    }
}

impl InProcess {
    /// Loads the recognizer (every worker's copy of the model) and makes the server. Blocking
    /// for as long as the model takes to load (a second or two): call it before streaming.
    /// The errors are `flux serve --asr`'s, each naming the command that fixes it.
    pub fn load(opts: &AsrOptions) -> Result<InProcess, AsrError> {
        Ok(InProcess::with_recognizer(Arc::new(Recognizer::load(
            opts,
        )?)))
    }

    /// A server over a recognizer already loaded (a fake one in tests).
    pub fn with_recognizer(recognizer: Arc<Recognizer>) -> InProcess {
        InProcess {
            shared: Arc::new(Shared {
                api_key: None,
                script: Arc::new(script::Script::default()),
                replay: None,
                log: None,
                faults: Vec::new(),
                asr: Some(recognizer),
                connections: AtomicU64::new(0),
                idle_timeout: None,
                grants: grant::Grants::default(),
            }),
        }
    }

    /// Decoding threads the recognizer runs.
    pub fn workers(&self) -> usize {
        self.shared.asr.as_ref().map_or(0, |r| r.pool.workers())
    }

    /// Connections served so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Serves one connection over `stream` (its upgrade request unread) until it ends.
    pub fn serve<S>(&self, stream: S) -> impl Future<Output = ()> + Send + 'static
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let conn = self.shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
        let request_id = uuid::Uuid::new_v4().to_string();
        accept::upgrade(stream, conn, self.shared.clone(), request_id)
    }
}

impl Acceptor for InProcess {
    fn serve(&self, stream: DuplexStream) -> BoxFuture<'static, ()> {
        InProcess::serve(self, stream).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::asr::tokenizer::DecodedWord;
    use crate::serve::asr::{Decoded, Pass, Transcriber};
    use crate::transport::local::Local;
    use crate::transport::{Message, OpenError, Request, open};
    use serde_json::Value;
    use std::time::Duration;

    /// Hears "hello" in any audio.
    struct Hello;

    impl Transcriber for Hello {
        fn transcribe(
            &mut self,
            _: &[f32],
            _: Pass,
            _: &[i64],
            _: &dyn Fn() -> bool,
        ) -> Result<Decoded, String> {
            Ok(Decoded {
                words: vec![DecodedWord {
                    text: "hello".into(),
                    token_probs: vec![0.9],
                }],
                token_ids: vec![1],
                capped: false,
            })
        }
    }

    fn transport() -> (Local, Arc<InProcess>) {
        let recognizer = Recognizer::with(vec![Box::new(Hello)]).unwrap();
        let server = Arc::new(InProcess::with_recognizer(Arc::new(recognizer)));
        (Local::new(server.clone()), server)
    }

    fn request(query: &str) -> Request {
        Request {
            url: url::Url::parse(&format!("local://moonshine-base-en/v2/listen?{query}")).unwrap(),
            headers: vec![],
            tls: None,
            timeout: Duration::from_secs(10),
        }
    }

    async fn next_json(rx: &mut Box<dyn crate::transport::PipeRx>) -> Value {
        match rx.recv().await {
            Some(Ok(Message::Text(t))) => serde_json::from_str(&t).unwrap(),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_bad_parameter_is_refused_as_flux_serve_refuses_it() {
        let (transport, server) = transport();
        let Err(OpenError::Refused(r)) = open(
            &transport,
            request("model=flux-general-en&encoding=linear16&sample_rate=16000&eot_threshold=2"),
        )
        .await
        else {
            panic!("expected a refusal")
        };
        assert_eq!(r.status, 400);
        assert!(r.header("dg-request-id").is_some(), "{:?}", r.headers);
        let body = String::from_utf8_lossy(&r.body);
        assert!(body.contains("eot_threshold"), "{body}");
        assert_eq!(server.connections(), 1);
    }

    #[tokio::test]
    async fn connected_configure_and_close_stream_are_answered() {
        let (transport, server) = transport();
        let mut pipe = open(
            &transport,
            request("model=flux-general-en&encoding=linear16&sample_rate=16000"),
        )
        .await
        .unwrap();
        assert_eq!(pipe.status, 101);
        let id = pipe.header("dg-request-id").unwrap().to_string();
        let connected = next_json(&mut pipe.rx).await;
        assert_eq!(connected["type"], "Connected");
        assert_eq!(connected["request_id"], id.as_str());
        pipe.tx
            .send(Message::Text(
                r#"{"type":"Configure","thresholds":{"eot_threshold":0.8}}"#.into(),
            ))
            .await
            .unwrap();
        pipe.tx.flush().await.unwrap();
        let answer = loop {
            let m = next_json(&mut pipe.rx).await;
            if m["type"] != "TurnInfo" {
                break m;
            }
        };
        assert_eq!(answer["type"], "ConfigureSuccess", "{answer}");
        assert_eq!(server.workers(), 1);
        pipe.tx
            .send(Message::Text(r#"{"type":"CloseStream"}"#.into()))
            .await
            .unwrap();
        pipe.tx.flush().await.unwrap();
        // The server closes the stream; nothing is left to read after its close.
        loop {
            match pipe.rx.recv().await {
                Some(Ok(Message::Close { .. })) | None => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("{e}"),
            }
        }
    }
}
