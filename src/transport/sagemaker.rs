//! AWS SageMaker's bidirectional stream (`InvokeEndpointWithBidirectionalStream`) as a
//! [`Transport`]: HTTP/2, AWS event-stream framing and SigV4, all by the official SDK
//! (`aws-sdk-sagemakerruntimehttp2`), with flux's own HTTP/2 client under it ([`http`]).
//!
//! SageMaker bridges the stream to a WebSocket inside the container, one payload part per
//! frame, so the pipe maps one to one: a text message goes as a `UTF8` part (the container
//! reads control messages only from text frames), binary as `BINARY`; answers come back the
//! same way. The container closing its WebSocket arrives as a `ModelStreamError`; after
//! `CloseStream`, one with a normal close code (1000, 1005, none) is the normal end (AWS
//! does not document which of the two it sends), any other code stays an error.
//!
//! What to open comes in the [`Request`] the provider builds: the URL is
//! `https://HOST[:PORT]/endpoints/NAME/invocations-bidirectional-stream?FLUX-QUERY` (the SDK
//! derives the same path; the query becomes `ModelQueryString`), and two headers carry the
//! container path and the signing region. Credentials come from the standard AWS chain and
//! never pass through flux's own types.

mod http;

use super::{Broken, Message, OpenError, Pipe, PipeRx, PipeTx, Refusal, Request, Transport};
use aws_sdk_sagemakerruntimehttp2::config::Region;
use aws_sdk_sagemakerruntimehttp2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sagemakerruntimehttp2::primitives::Blob;
use aws_sdk_sagemakerruntimehttp2::primitives::event_stream::EventReceiver;
use aws_sdk_sagemakerruntimehttp2::types::error::{
    RequestStreamEventError, ResponseStreamEventError,
};
use aws_sdk_sagemakerruntimehttp2::types::{
    RequestPayloadPart, RequestStreamEvent, ResponseStreamEvent,
};
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{OnceCell, mpsc};

/// Request header naming the path inside the container (`v2/listen`).
pub const INVOCATION_PATH_HEADER: &str = "x-amzn-sagemaker-model-invocation-path";
/// Request header carrying the SigV4 signing region to this transport (not sent as a header).
pub const REGION_HEADER: &str = "x-flux-aws-region";
/// The route SageMaker Runtime serves the stream on, after `/endpoints/NAME`.
pub const ROUTE_SUFFIX: &str = "invocations-bidirectional-stream";
/// Payload parts queued ahead of the SDK's writer: ~2.5 s of 80 ms frames.
const QUEUE: usize = 32;
/// SageMaker ends a stream at 30 minutes; flux moves to the next one a minute before, through
/// the session's reconnect (the open turn's audio is replayed, times and indices continue).
const ROTATE_AFTER: std::time::Duration = std::time::Duration::from_secs(29 * 60);
/// Tests only (docs/serve.md, "Testing"): rotate after this many seconds instead, so a
/// rotation can be seen mid-file. Not a flag: a longer value would run into the cap, so only
/// shorter ones are taken.
pub const ROTATE_ENV: &str = "FLUX_SAGEMAKER_ROTATE_AFTER";

/// When a stream is given up for the next: [`ROTATE_AFTER`], or [`ROTATE_ENV`]'s seconds.
fn rotate_after() -> Result<std::time::Duration, OpenError> {
    let Some(value) = std::env::var_os(ROTATE_ENV) else {
        return Ok(ROTATE_AFTER);
    };
    let text = value.to_string_lossy();
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= ROTATE_AFTER.as_secs_f64())
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| {
            OpenError::Invalid(format!(
                "{ROTATE_ENV}=`{text}` is not a number of seconds above 0 and at most {} (it \
                 is for tests; unset it to rotate a minute before SageMaker's 30-minute cap)",
                ROTATE_AFTER.as_secs()
            ))
        })
}

/// Opens SageMaker streams. The AWS configuration (credential chain, profile) is loaded on
/// the first connection and shared by every reconnect after it.
#[derive(Default, Clone)]
pub struct SageMaker {
    aws: Arc<OnceCell<aws_config::SdkConfig>>,
}

impl SageMaker {
    pub fn new() -> SageMaker {
        SageMaker::default()
    }
}

/// The parts of a [`Request`] the SDK takes separately.
struct Target {
    endpoint_url: String,
    endpoint_name: String,
    invocation_path: String,
    query: String,
    region: String,
}

impl Target {
    fn from_request(request: &Request) -> Result<Target, OpenError> {
        let url = &request.url;
        let invalid = |why: &str| OpenError::Invalid(format!("bad SageMaker request URL: {why}"));
        let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
        let name = match segments.as_slice() {
            ["endpoints", name, ROUTE_SUFFIX] if !name.is_empty() => {
                percent_decode(name).ok_or_else(|| invalid("the endpoint name is not UTF-8"))?
            }
            _ => {
                return Err(invalid(
                    "expected /endpoints/NAME/invocations-bidirectional-stream",
                ));
            }
        };
        let host = url.host_str().ok_or_else(|| invalid("no host"))?;
        let endpoint_url = match url.port() {
            Some(p) => format!("{}://{host}:{p}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        };
        let header = |name: &str| super::header(&request.headers, name).map(str::to_string);
        Ok(Target {
            endpoint_url,
            endpoint_name: name,
            invocation_path: header(INVOCATION_PATH_HEADER)
                .ok_or_else(|| invalid("no model invocation path"))?,
            query: url.query().unwrap_or("").to_string(),
            region: header(REGION_HEADER).ok_or_else(|| invalid("no region"))?,
        })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    url::form_urlencoded::parse(format!("n={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

impl Transport for SageMaker {
    fn connect(&self, request: Request) -> BoxFuture<'static, Result<Pipe, OpenError>> {
        let aws = self.aws.clone();
        Box::pin(async move { open(&aws, request).await })
    }
}

/// The TLS setup of the request (`--ca-cert`), or the shared default.
fn tls_for(request: &Request) -> Result<Arc<rustls::ClientConfig>, OpenError> {
    match &request.tls {
        Some(tls) => Ok(tls.clone()),
        None => super::tls::default_config().map_err(|e| OpenError::Tls(e.to_string())),
    }
}

async fn open(aws: &OnceCell<aws_config::SdkConfig>, request: Request) -> Result<Pipe, OpenError> {
    let target = Target::from_request(&request)?;
    let rotate_after = rotate_after()?;
    let tls = tls_for(&request)?;
    let http = http::client(&tls);
    let shared = aws
        .get_or_init(|| async {
            // The credential chain's own HTTP calls (SSO, STS, instance metadata) use the
            // same client; endpoint URLs from the environment are flux's to read (the
            // provider validated them), so the loader is told the endpoint explicitly below.
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .http_client(http.clone())
                .region(Region::new(target.region.clone()))
                .load()
                .await
        })
        .await;
    let config = aws_sdk_sagemakerruntimehttp2::config::Builder::from(shared)
        .http_client(http)
        .region(Region::new(target.region.clone()))
        .endpoint_url(target.endpoint_url.clone())
        .build();
    let client = aws_sdk_sagemakerruntimehttp2::Client::from_conf(config);
    let (tx, mut rx) = mpsc::channel::<RequestStreamEvent>(QUEUE);
    let input = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|e| e.map(Ok::<_, RequestStreamEventError>))
    });
    let mut call = client
        .invoke_endpoint_with_bidirectional_stream()
        .endpoint_name(&target.endpoint_name)
        .model_invocation_path(&target.invocation_path)
        .body(input.into());
    if !target.query.is_empty() {
        call = call.model_query_string(&target.query);
    }
    let output = call.send().await.map_err(|e| explain_open(e, &target))?;
    let closing = Arc::new(AtomicBool::new(false));
    let mut headers = Vec::new();
    if let Some(variant) = output.invoked_production_variant() {
        headers.push((
            "x-amzn-invoked-production-variant".to_string(),
            variant.to_string(),
        ));
    }
    Ok(Pipe {
        tx: Box::new(Tx {
            tx: Some(tx),
            closing: closing.clone(),
        }),
        rx: Box::new(Rx {
            body: output.body,
            closing,
            done: false,
            rotate_at: tokio::time::Instant::now() + rotate_after,
            rotate_after,
        }),
        status: 200,
        headers,
    })
}

/// The sending half: payload parts into the SDK's input stream.
struct Tx {
    tx: Option<mpsc::Sender<RequestStreamEvent>>,
    /// Set once `CloseStream` is sent: the container closing after it is the normal end.
    closing: Arc<AtomicBool>,
}

impl PipeTx for Tx {
    fn send(&mut self, message: Message) -> BoxFuture<'_, Result<(), Broken>> {
        Box::pin(async move {
            let (bytes, data_type) = match message {
                Message::Text(text) => {
                    if text.contains("\"CloseStream\"") {
                        self.closing.store(true, Ordering::SeqCst);
                    }
                    (text.into_bytes(), "UTF8")
                }
                Message::Binary(bytes) => (bytes.to_vec(), "BINARY"),
                Message::Close { .. } => return self.close_input(),
            };
            let part = RequestPayloadPart::builder()
                .bytes(Blob::new(bytes))
                .data_type(data_type)
                .build();
            let Some(tx) = &self.tx else {
                return Err(Broken::new("the SageMaker input stream is already closed"));
            };
            tx.send(RequestStreamEvent::PayloadPart(part))
                .await
                .map_err(|_| Broken::new("the SageMaker stream ended"))
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), Broken>> {
        // Parts are handed to the SDK's writer as they are queued; HTTP/2 flow control
        // does the rest.
        Box::pin(async { Ok(()) })
    }

    fn close(&mut self) -> BoxFuture<'_, Result<(), Broken>> {
        Box::pin(async move { self.close_input() })
    }
}

impl Tx {
    /// Ends the input stream (the SDK sends the empty end envelope); SageMaker closes the
    /// container's WebSocket, whose answer arrives on the receiving half.
    fn close_input(&mut self) -> Result<(), Broken> {
        self.tx = None;
        Ok(())
    }
}

/// The receiving half: the SDK's decoded response events.
struct Rx {
    body: EventReceiver<ResponseStreamEvent, ResponseStreamEventError>,
    closing: Arc<AtomicBool>,
    done: bool,
    /// When to give this stream up for the next, ahead of SageMaker's cap.
    rotate_at: tokio::time::Instant,
    rotate_after: std::time::Duration,
}

impl PipeRx for Rx {
    fn recv(&mut self) -> BoxFuture<'_, Option<Result<Message, Broken>>> {
        Box::pin(async move {
            if self.done {
                return None;
            }
            // A stream already closing is read to its end: rotating then would lose the last
            // transcript.
            let rotate = !self.closing.load(Ordering::SeqCst);
            let event = tokio::select! {
                event = self.body.recv() => event,
                _ = tokio::time::sleep_until(self.rotate_at), if rotate => {
                    self.done = true;
                    return Some(Err(Broken::planned(format!(
                        "SageMaker caps a stream at 30 minutes: moving to the next stream \
                         after {:.0}s, before the cap",
                        self.rotate_after.as_secs_f64()
                    ))));
                }
            };
            let message = self.translate(event);
            if !matches!(message, Some(Ok(Message::Text(_) | Message::Binary(_)))) {
                self.done = true;
            }
            message
        })
    }
}

impl Rx {
    fn translate(
        &self,
        event: Result<
            Option<ResponseStreamEvent>,
            SdkError<ResponseStreamEventError, aws_smithy_types::event_stream::RawMessage>,
        >,
    ) -> Option<Result<Message, Broken>> {
        match event {
            Ok(None) => None,
            Ok(Some(ResponseStreamEvent::PayloadPart(part))) => {
                let bytes = part
                    .bytes()
                    .map(|b| b.as_ref().to_vec())
                    .unwrap_or_default();
                if part.data_type() == Some("UTF8") {
                    match String::from_utf8(bytes) {
                        Ok(text) => Some(Ok(Message::Text(text))),
                        Err(_) => Some(Err(Broken::new(
                            "SageMaker sent a UTF8 payload part that is not UTF-8",
                        ))),
                    }
                } else {
                    Some(Ok(Message::Binary(bytes.into())))
                }
            }
            // A kind of event this SDK version does not know: skip it, as a WebSocket
            // client skips a frame type it does not use.
            Ok(Some(_)) => Some(Ok(Message::Binary(bytes::Bytes::new()))),
            Err(SdkError::ServiceError(ctx)) => Some(self.stream_error(ctx.err())),
            Err(e) => Some(Err(Broken::new(format!(
                "the SageMaker response stream failed: {}",
                error_chain(&e)
            )))),
        }
    }

    fn stream_error(&self, e: &ResponseStreamEventError) -> Result<Message, Broken> {
        match e {
            ResponseStreamEventError::ModelStreamError(m) => {
                let code = m.error_code().unwrap_or("");
                let message = m.message().unwrap_or("");
                if self.closing.load(Ordering::SeqCst) && normal_close(code) {
                    // After CloseStream the container closing normally is the end asked
                    // for. Any other code (SageMaker's cap, the container failing) is not:
                    // the session may still owe a turn and reconnects for it.
                    return Ok(Message::Close {
                        code: Some(1000),
                        reason: String::new(),
                    });
                }
                Ok(Message::Close {
                    code: code.parse::<u16>().ok().or(Some(1011)),
                    reason: format!("SageMaker ModelStreamError {code}: {message}")
                        .trim_end_matches([' ', ':'])
                        .to_string(),
                })
            }
            ResponseStreamEventError::InternalStreamFailure(f) => Err(Broken::new(format!(
                "SageMaker InternalStreamFailure: {} (a platform fault; retrying usually works)",
                f.message().unwrap_or("no detail")
            ))),
            other => Err(Broken::new(format!(
                "SageMaker stream error {}: {}",
                other.code().unwrap_or("unknown"),
                other.message().unwrap_or("no detail")
            ))),
        }
    }
}

/// A `ModelStreamError` code that is a WebSocket close without trouble: normal (1000), no
/// status (1005), or none given.
fn normal_close(code: &str) -> bool {
    matches!(code.trim(), "" | "1000" | "1005")
}

/// Every message in an error's source chain, joined: the SDK's own top-level text is often
/// just "dispatch failure".
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn find_connect_failure<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a http::ConnectFailed> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<http::ConnectFailed>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

type OpenSdkError = SdkError<
    aws_sdk_sagemakerruntimehttp2::operation::invoke_endpoint_with_bidirectional_stream::InvokeEndpointWithBidirectionalStreamError,
    aws_smithy_runtime_api::client::orchestrator::HttpResponse,
>;

/// A failed `send()` as the session's [`OpenError`]: the service's answers become a
/// [`Refusal`] with its status, AWS's error code and message, and the request id, so the
/// session explains them like any refused handshake (and picks the exit code by status).
fn explain_open(e: OpenSdkError, target: &Target) -> OpenError {
    match &e {
        SdkError::ServiceError(ctx) => {
            let err = ctx.err();
            let raw = ctx.raw();
            let status = raw.status().as_u16();
            let code = err.code().unwrap_or("").to_string();
            let mut message = err.message().unwrap_or("").to_string();
            if message.is_empty() {
                message = String::from_utf8_lossy(raw.body().bytes().unwrap_or_default())
                    .trim()
                    .to_string();
            }
            if let Some(advice) = advice(status, &code, target) {
                // The session shows ~300 characters of detail: the advice goes first, the
                // service's own words (which may quote the container) after it, shortened.
                let said: String = message.chars().take(120).collect();
                let cut = if said.len() < message.len() {
                    "…"
                } else {
                    ""
                };
                message = if message.is_empty() {
                    advice
                } else {
                    format!("{advice} (SageMaker said: {said}{cut})")
                };
            }
            let mut headers = Vec::new();
            if let Some(id) = raw.headers().get("x-amzn-requestid") {
                headers.push((
                    crate::protocol::REQUEST_ID_HEADER.to_string(),
                    id.to_string(),
                ));
            }
            let body = serde_json::json!({ "err_code": code, "err_msg": message });
            OpenError::Refused(Refusal {
                status,
                headers,
                body: body.to_string().into_bytes(),
            })
        }
        SdkError::TimeoutError(_) => OpenError::Timeout,
        SdkError::DispatchFailure(d) => {
            let source = d
                .as_connector_error()
                .map(|c| c as &(dyn std::error::Error + 'static));
            let text = source.map(error_chain).unwrap_or_default();
            if text.contains("no credentials") || text.contains("credential provider") {
                return no_credentials(&text);
            }
            match source.and_then(find_connect_failure) {
                Some(f) if f.tls => OpenError::Tls(f.message.clone()),
                Some(f) => OpenError::Network(f.message.clone()),
                None => OpenError::Network(format!(
                    "the request to SageMaker failed: {}",
                    source
                        .map(error_chain)
                        .unwrap_or_else(|| "dispatch failure".into())
                )),
            }
        }
        SdkError::ConstructionFailure(_) => {
            let text = error_chain(&e);
            if text.to_ascii_lowercase().contains("credential") {
                no_credentials(&text)
            } else {
                OpenError::Invalid(format!("cannot build the SageMaker request: {text}"))
            }
        }
        _ => OpenError::Network(format!(
            "SageMaker's response could not be read: {}",
            error_chain(&e)
        )),
    }
}

/// The credential chain found nothing usable, so nothing was sent. Exit 3 like a refused
/// key (a 401 for the session's explanation), with the chain's own summary: its first line
/// (the rest lists every provider it tried).
fn no_credentials(chain: &str) -> OpenError {
    let first = chain
        .lines()
        .next()
        .unwrap_or("")
        .trim_end_matches([':', ' ', '.']);
    let why = first.rsplit(": ").next().unwrap_or(first);
    let body = serde_json::json!({
        "err_code": "NoCredentials",
        "err_msg": format!("no usable AWS credentials on this machine ({why}), so nothing was sent"),
    });
    OpenError::Refused(Refusal {
        status: 401,
        headers: Vec::new(),
        body: body.to_string().into_bytes(),
    })
}

/// What to do about a refusal, where the status or AWS's code says more than the message.
fn advice(status: u16, code: &str, target: &Target) -> Option<String> {
    let lower = code.to_ascii_lowercase();
    if lower.contains("expired") {
        return Some(
            "the AWS credentials have expired: refresh them (e.g. `aws sso login`, or new \
             temporary keys) and run again"
                .into(),
        );
    }
    match status {
        424 => Some(format!(
            "the container refused the stream: check that Flux is enabled in the endpoint's \
             engine config (listen_v2), that it serves `{}`, and the parameters sent",
            target.invocation_path
        )),
        400 | 404 if lower.contains("validation") || status == 404 => Some(format!(
            "check --endpoint `{}` and --region `{}` (`aws sagemaker list-endpoints --region {}`)",
            target.endpoint_name, target.region, target.region
        )),
        _ => None,
    }
}
