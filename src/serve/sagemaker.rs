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
//! close with a code other than 1000 becomes a `ModelStreamError`, a container that goes away
//! without a close resets the HTTP/2 stream.
//!
//! Requests must carry a SigV4 `Authorization` header in form (`AWS4-HMAC-SHA256
//! Credential=…, SignedHeaders=…, Signature=…`) and `x-amz-date`; signatures are NOT verified
//! (there is no secret to verify them with). With `--api-key KEY` the access key id in
//! `Credential=` must be KEY, else the answer is AWS's `UnrecognizedClientException` (403).

use crate::provider::Secret;
use aws_smithy_eventstream::frame::{
    DecodedFrame, MessageFrameDecoder, read_message_from, write_message_to,
};
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
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
/// Payload parts larger than this are refused, as SageMaker refuses oversized events.
const MAX_PART: usize = 1 << 20;

/// What every stream shares.
struct Shared {
    /// The Deepgram front end: "the container".
    container: SocketAddr,
    api_key: Option<Secret>,
    /// `--sagemaker-session-cap`: seconds of audio a stream may carry.
    session_cap: Option<f64>,
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
) {
    let shared = Arc::new(Shared {
        container,
        api_key,
        session_cap,
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
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// An AWS JSON error: status, `x-amzn-errortype` (which the SDKs read the error's kind
/// from) and `{"message": …}`, with a request id as SageMaker sends one.
fn aws_error(status: u16, kind: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "message": message }).to_string();
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .header("x-amzn-errortype", kind)
        .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string())
        .body(Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).map_err(|e| match e {}).boxed()))
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
    if let Err(refusal) = check_sigv4(
        header("authorization").as_deref(),
        header("x-amz-date").as_deref(),
        shared,
    ) {
        return refusal;
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

/// SigV4 in form only: the scheme, `Credential=AKID/DATE/REGION/sagemaker/aws4_request`,
/// `SignedHeaders=`, `Signature=`, and `x-amz-date`. With `--api-key`, AKID must match it.
#[allow(clippy::result_large_err)]
fn check_sigv4(
    authorization: Option<&str>,
    date: Option<&str>,
    shared: &Shared,
) -> Result<(), Response<Body>> {
    let missing = |what: &str| {
        aws_error(
            403,
            "IncompleteSignatureException",
            &format!("Authorization header requires {what} (SigV4)"),
        )
    };
    let Some(auth) = authorization else {
        return Err(aws_error(
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Err(missing("the AWS4-HMAC-SHA256 scheme"));
    };
    let field = |key: &str| {
        rest.split(',')
            .map(str::trim)
            .find_map(|p| p.strip_prefix(key))
            .filter(|v| !v.is_empty())
    };
    let credential = field("Credential=").ok_or_else(|| missing("a Credential"))?;
    field("SignedHeaders=").ok_or_else(|| missing("SignedHeaders"))?;
    field("Signature=").ok_or_else(|| missing("a Signature"))?;
    if date.is_none_or(str::is_empty) {
        return Err(missing("an x-amz-date header"));
    }
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope[3] != "sagemaker" || scope[4] != "aws4_request" {
        return Err(missing(
            "a Credential scope AKID/DATE/REGION/sagemaker/aws4_request",
        ));
    }
    if let Some(key) = &shared.api_key
        && scope[0] != key.expose()
    {
        return Err(aws_error(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    Ok(())
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

/// One response event: a payload part, or a `ModelStreamError` exception.
fn encode(message: &Message) -> Result<Frame<Bytes>, BoxError> {
    let mut buf = Vec::new();
    write_message_to(message, &mut buf)?;
    Ok(Frame::data(Bytes::from(buf)))
}

fn payload_part(bytes: Bytes, data_type: &'static str) -> Message {
    Message::new(bytes)
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("event".into()),
        ))
        .add_header(Header::new(
            ":event-type",
            HeaderValue::String("PayloadPart".into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/octet-stream".into()),
        ))
        .add_header(Header::new(
            "DataType",
            HeaderValue::String(data_type.into()),
        ))
}

fn model_stream_error(code: u16, reason: &str) -> Message {
    model_stream_error_text(&code.to_string(), reason)
}

fn model_stream_error_text(code: &str, reason: &str) -> Message {
    let body = serde_json::json!({ "ErrorCode": code, "Message": reason }).to_string();
    Message::new(Bytes::from(body))
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("exception".into()),
        ))
        .add_header(Header::new(
            ":exception-type",
            HeaderValue::String("ModelStreamError".into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ))
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
                                return;
                            }
                        }
                        if ws_tx.send(frame).await.is_err() {
                            return;
                        }
                    }
                    // The empty envelope ends the input: SageMaker closes the WebSocket.
                    Ok(None) => {
                        let _ = ws_tx.send(tungstenite::Message::Close(None)).await;
                        return;
                    }
                    Err(_) => {
                        let _ = ws_tx.send(tungstenite::Message::Close(None)).await;
                        return;
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
                        return;
                    }
                },
                // A frame with a bad CRC or length: the stream cannot be trusted further.
                Err(_) => {
                    let _ = ws_tx.send(tungstenite::Message::Close(None)).await;
                    return;
                }
            }
        }
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
                    // The container went away without a close: reset the HTTP/2 stream.
                    let _ = out
                        .send(Err(format!("the container connection failed: {e}").into()))
                        .await;
                    return;
                }
            };
            if out.send(encode(&message)).await.is_err() {
                return;
            }
        }
        let _ = out
            .send(Err("the container connection ended without a close".into()))
            .await;
    };
    tokio::join!(input, output);
}

/// The WebSocket frame inside one SigV4 envelope (`:date`, `:chunk-signature`, payload =
/// the event); `None` for the empty envelope that ends the input.
fn unwrap_envelope(envelope: &Message) -> Result<Option<tungstenite::Message>, String> {
    let has = |name: &str| envelope.headers().iter().any(|h| h.name().as_str() == name);
    if !has(":date") || !has(":chunk-signature") {
        return Err("an event without its SigV4 envelope".into());
    }
    if envelope.payload().is_empty() {
        return Ok(None);
    }
    let event = read_message_from(&mut envelope.payload().clone()).map_err(|e| e.to_string())?;
    let header = |name: &str| {
        event
            .headers()
            .iter()
            .find(|h| h.name().as_str() == name)
            .and_then(|h| h.value().as_string().ok())
            .map(|s| s.as_str().to_string())
    };
    if header(":event-type").as_deref() != Some("PayloadPart") {
        return Err("an event that is not a PayloadPart".into());
    }
    let payload = event.payload().clone();
    if payload.len() > MAX_PART {
        return Err("a payload part over 1 MiB".into());
    }
    match header("DataType").as_deref() {
        Some("UTF8") => String::from_utf8(payload.to_vec())
            .map(|t| Some(tungstenite::Message::Text(t.into())))
            .map_err(|_| "a UTF8 part that is not UTF-8".into()),
        _ => Ok(Some(tungstenite::Message::Binary(payload))),
    }
}
