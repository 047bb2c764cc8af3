//! `flux serve`'s SageMaker front end: SageMaker Runtime's
//! `InvokeEndpointWithBidirectionalStream` over HTTPS with HTTP/2, for flux, pipecat's
//! SageMaker service, or anyone's AWS SDK code, with no AWS account.
//!
//! It does what SageMaker does: it bridges each stream to a WebSocket into "the container",
//! which here is this same `flux serve`'s Deepgram front end on its own listener. So the turn
//! engine, scripts, faults and the log are the same as for the other dialects, and a stream
//! the container refuses (a bad parameter, a wrong path, `--fault reject`) reaches the client
//! as SageMaker's HTTP 424. Each request `PayloadPart` becomes one WebSocket frame (`DataType`
//! `UTF8` → text, `BINARY` or none → binary), each container frame one response part; a
//! close with a code other than 1000 becomes a `ModelStreamError`, and a container that goes
//! away without a close an `InternalStreamFailure` (SageMaker's retryable platform fault;
//! what AWS sends then is not documented). Both come after every answer the container gave:
//! resetting the HTTP/2 stream instead would make hyper discard the answers still queued
//! for the client (h2 clears a stream's send queue on reset), so turn ends in flight when
//! the container dropped were lost.
//!
//! Requests must carry a SigV4 `Authorization` header in form (`AWS4-HMAC-SHA256
//! Credential=…, SignedHeaders=…, Signature=…`) and `x-amz-date`; signatures are NOT verified
//! (there is no secret to verify them with). With `--api-key KEY` the access key id in
//! `Credential=` must be KEY, else the answer is AWS's `UnrecognizedClientException` (403).

mod answers;
mod events;

use crate::provider::Secret;
use crate::serve::fault::{self, Fault};
use answers::{aws_error, check_sigv4, platform_answer, signing_region};
use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use bytes::Bytes;
use events::{encode, internal_stream_failure, model_stream_error, model_stream_error_text};
use events::{payload_part, unwrap_envelope};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

/// The route's last segment, after `/endpoints/NAME/`.
const ROUTE_SUFFIX: &str = crate::transport::sagemaker::ROUTE_SUFFIX;
const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";
/// How long the request body is read after the input has ended (the end envelope, the cap,
/// the container gone), for the client to read its answers and end the stream.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// HTTP/2's initial flow-control window (RFC 9113 §6.9.2).
const DEFAULT_WINDOW: u32 = 65_535;

/// What every stream shares.
struct Shared {
    /// The Deepgram front end: "the container".
    container: SocketAddr,
    api_key: Option<Secret>,
    /// `--sagemaker-session-cap`: seconds of audio a stream may carry.
    session_cap: Option<f64>,
    /// `--fault`: the `sagemaker-` ones are answered here.
    faults: Vec<Fault>,
    /// SageMaker requests so far (what a `sagemaker-` fault's `conn=N` counts).
    requests: std::sync::atomic::AtomicU64,
}

/// A stream's cap in audio bytes: its seconds, and the bytes one second of its audio takes
/// (from the query's `sample_rate` and `encoding`, as the container reads them).
/// SageMaker caps streams by wall time (30 minutes); the emulator counts audio instead, so a
/// test streaming with `--fast` hits the cap at the same point every run, like `--fault`.
struct Cap {
    seconds: f64,
    bytes_per_second: f64,
}

impl Cap {
    fn for_query(seconds: f64, query: &str) -> Cap {
        let mut rate = 16000.0;
        let mut width = 2.0;
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "sample_rate" => rate = v.parse().unwrap_or(rate),
                "encoding" if v != "linear16" => width = 1.0,
                _ => {}
            }
        }
        Cap {
            seconds,
            bytes_per_second: rate * width,
        }
    }
}

/// The certificate the front end serves, and its CA for clients to trust.
pub struct Tls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub ca_pem: String,
}

/// A CA made for this run and a certificate it signs for the loopback names
/// (`localhost`, `127.0.0.1`, `::1`), offering only HTTP/2 (SageMaker picks it by ALPN).
pub fn self_signed() -> anyhow::Result<Tls> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(
        DnType::CommonName,
        "flux serve SageMaker CA (this run only)",
    );
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let names = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    let cert = CertificateParams::new(names)?.signed_by(&key, &ca)?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ca_pem: ca.pem(),
    })
}

/// Writes the CA for clients (`--ca-cert`, `AWS_CA_BUNDLE`) to `path`.
pub fn write_ca(path: &Path, tls: &Tls) -> anyhow::Result<()> {
    std::fs::write(path, &tls.ca_pem).map_err(|e| {
        crate::error::FluxError::Usage(format!(
            "cannot write --sagemaker-ca {}: {e}",
            path.display()
        ))
        .into()
    })
}

/// Serves SageMaker streams on `listener` until the task is dropped or aborted.
pub async fn accept_loop(
    listener: TcpListener,
    tls: tokio_rustls::TlsAcceptor,
    container: SocketAddr,
    api_key: Option<Secret>,
    session_cap: Option<f64>,
    faults: Vec<Fault>,
) {
    let shared = Arc::new(Shared {
        container,
        api_key,
        session_cap,
        faults,
        requests: std::sync::atomic::AtomicU64::new(0),
    });
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    connections.spawn(connection(tcp, tls.clone(), shared.clone()));
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            },
        }
    }
}

async fn connection(
    tcp: tokio::net::TcpStream,
    tls: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
) {
    let Ok(stream) = tls.accept(tcp).await else {
        return;
    };
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(req, &shared).await) }
    });
    // The stream window stays at HTTP/2's default (65,535 bytes) instead of hyper's 1 MiB: a
    // client may start sending before it has read these SETTINGS, and one that then keeps
    // the default (awscrt, under the AWS SDK for Python, sometimes does) waits for a
    // WINDOW_UPDATE that a server with a 1 MiB window sends only after 512 KiB: the stream
    // stalls after ~64 KiB of audio. With the default window both sides agree from the first
    // byte, and an update follows every 32 KiB read.
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(DEFAULT_WINDOW)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn handle(req: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let name = match segments.as_slice() {
        ["endpoints", name, suffix] if *suffix == ROUTE_SUFFIX && !name.is_empty() => {
            name.to_string()
        }
        _ => {
            return aws_error(
                404,
                "UnknownOperationException",
                &format!("no such route {path}; use POST /endpoints/NAME/{ROUTE_SUFFIX}"),
            );
        }
    };
    if req.method() != hyper::Method::POST {
        return aws_error(405, "UnknownOperationException", "use POST");
    }
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let request = shared
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        + 1;
    let authorization = header("authorization");
    if let Err(refusal) = check_sigv4(
        authorization.as_deref(),
        header("x-amz-date").as_deref(),
        shared.api_key.as_ref(),
    ) {
        return *refusal;
    }
    if let Some(platform) = fault::platform_for(&shared.faults, request) {
        let region = authorization
            .as_deref()
            .and_then(signing_region)
            .unwrap_or("us-east-1");
        if platform == fault::Platform::NoAnswer {
            // Held while the client waits (its stream stays open), let go when it gives up.
            let mut body = req.into_body();
            let waiting = async { while let Some(Ok(_)) = body.frame().await {} };
            let _ = tokio::time::timeout(answers::NO_ANSWER_HOLD, waiting).await;
        }
        return platform_answer(platform, &name, region);
    }
    if header("content-type").as_deref() != Some(EVENT_STREAM) {
        return aws_error(
            400,
            "ValidationError",
            &format!("content-type must be {EVENT_STREAM}"),
        );
    }
    let invocation_path = header("x-amzn-sagemaker-model-invocation-path").unwrap_or_default();
    let query = header("x-amzn-sagemaker-model-query-string").unwrap_or_default();
    // SageMaker opens `/<path>?<query>` inside the container.
    let target = format!(
        "ws://{}/{}{}{}",
        shared.container,
        invocation_path.trim_start_matches('/'),
        if query.is_empty() { "" } else { "?" },
        query
    );
    let ws = match open_container(&target, shared).await {
        Ok(ws) => ws,
        Err(why) => {
            return aws_error(
                424,
                "ModelError",
                &format!("Failed to establish WebSocket connection to endpoint {name}: {why}"),
            );
        }
    };
    let (out_tx, out_rx) = mpsc::channel::<Result<Frame<Bytes>, BoxError>>(64);
    let cap = shared.session_cap.map(|s| Cap::for_query(s, &query));
    tokio::spawn(bridge(req.into_body(), ws, out_tx, cap));
    let body = StreamBody::new(futures_util::stream::unfold(out_rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", EVENT_STREAM)
        .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string())
        .header("x-amzn-invoked-production-variant", "AllTraffic")
        .body(BodyExt::boxed(body))
        .unwrap_or_else(|_| aws_error(500, "InternalServerError", "cannot build the response"))
}

type ContainerWs =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The WebSocket into "the container", with the key it wants when `--api-key` is set.
async fn open_container(target: &str, shared: &Shared) -> Result<ContainerWs, String> {
    let mut request = target
        .into_client_request()
        .map_err(|e| format!("bad path or query: {e}"))?;
    if let Some(key) = &shared.api_key {
        let value = format!("Token {}", key.expose())
            .parse()
            .map_err(|_| "the key is not a header value".to_string())?;
        request.headers_mut().insert("authorization", value);
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err(format!(
                "the container answered HTTP {}: {}",
                response.status().as_u16(),
                body.trim()
            ))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Copies both directions until the container is done: request events → WebSocket frames,
/// WebSocket frames → response events.
async fn bridge(
    body: Incoming,
    ws: ContainerWs,
    out: mpsc::Sender<Result<Frame<Bytes>, BoxError>>,
    cap: Option<Cap>,
) {
    let (mut ws_tx, mut ws_rx) = ws.split();
    let capped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let capped_out = capped.clone();
    let input = async move {
        let mut body = body;
        let mut audio_bytes = 0u64;
        let mut decoder = MessageFrameDecoder::new();
        let mut buf = bytes::BytesMut::new();
        loop {
            match decoder.decode_frame(&mut buf) {
                Ok(DecodedFrame::Complete(envelope)) => match unwrap_envelope(&envelope) {
                    Ok(Some(frame)) => {
                        if let (tungstenite::Message::Binary(b), Some(cap)) = (&frame, &cap) {
                            audio_bytes += b.len() as u64;
                            if audio_bytes as f64 >= cap.seconds * cap.bytes_per_second {
                                // The stream is over its cap: take no more audio, let the
                                // container answer what it has (so a test's outcome does not
                                // depend on how fast the client sends), then end the stream
                                // as a platform error when the container closes.
                                capped.store(true, std::sync::atomic::Ordering::SeqCst);
                                let close = r#"{"type":"CloseStream"}"#;
                                let _ = ws_tx.send(tungstenite::Message::Text(close.into())).await;
                                break;
                            }
                        }
                        if ws_tx.send(frame).await.is_err() {
                            break;
                        }
                    }
                    // The empty envelope ends the input: SageMaker closes the WebSocket.
                    Ok(None) => {
                        let _ = ws_tx.send(tungstenite::Message::Close(None)).await;
                        break;
                    }
                    Err(_) => {
                        let _ = ws_tx.send(tungstenite::Message::Close(None)).await;
                        break;
                    }
                },
                Ok(DecodedFrame::Incomplete) => match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            buf.extend_from_slice(&data);
                        }
                    }
                    // The client went away, or its stream ended without the end envelope.
                    _ => {
                        let _ = ws_tx.send(tungstenite::Message::Close(None)).await;
                        break;
                    }
                },
                // A frame with a bad CRC or length: the stream cannot be trusted further.
                Err(_) => {
                    let _ = ws_tx.send(tungstenite::Message::Close(None)).await;
                    break;
                }
            }
        }
        // The request body is read on (and dropped) to its END_STREAM, whatever ended the
        // input: dropping it first makes hyper reset a stream the client is still sending
        // on, so its sends fail before it has read the answers queued for it (the
        // container's last messages, a ModelStreamError, the cap's error), and awscrt, which
        // sends END_STREAM in a frame of its own after the end envelope, fails its last write.
        let drain = async { while let Some(Ok(_)) = body.frame().await {} };
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
    };
    let output = async move {
        while let Some(item) = ws_rx.next().await {
            let message = match item {
                Ok(tungstenite::Message::Text(t)) => {
                    payload_part(Bytes::from(t.as_str().to_owned()), "UTF8")
                }
                Ok(tungstenite::Message::Binary(b)) => payload_part(b, "BINARY"),
                Ok(tungstenite::Message::Close(_))
                    if capped_out.load(std::sync::atomic::Ordering::SeqCst) =>
                {
                    let error = model_stream_error_text(
                        "1008",
                        "the stream reached its maximum duration \
                         (flux serve --sagemaker-session-cap)",
                    );
                    let _ = out.send(encode(&error)).await;
                    return;
                }
                Ok(tungstenite::Message::Close(frame)) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    if code != 1000 {
                        let _ = out.send(encode(&model_stream_error(code, &reason))).await;
                    }
                    // A normal close ends the response stream cleanly.
                    return;
                }
                Ok(_) => continue,
                Err(e) => {
                    let failure = internal_stream_failure(&format!(
                        "the model container's connection failed: {e}"
                    ));
                    let _ = out.send(encode(&failure)).await;
                    return;
                }
            };
            if out.send(encode(&message)).await.is_err() {
                return;
            }
        }
        let failure =
            internal_stream_failure("the model container's connection ended without a close");
        let _ = out.send(encode(&failure)).await;
    };
    tokio::join!(input, output);
}
