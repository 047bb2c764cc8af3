//! SageMaker's response events as the emulator writes them (payload parts and the two
//! exceptions), and the request events it reads (the SigV4 envelope around each part).

use super::BoxError;
use aws_smithy_eventstream::frame::{read_message_from, write_message_to};
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::Bytes;
use hyper::body::Frame;
use tokio_tungstenite::tungstenite;

/// Payload parts larger than this are refused, as SageMaker refuses oversized events.
pub const MAX_PART: usize = 1 << 20;

/// One response event: a payload part, or a `ModelStreamError` exception.
pub fn encode(message: &Message) -> Result<Frame<Bytes>, BoxError> {
    let mut buf = Vec::new();
    write_message_to(message, &mut buf)?;
    Ok(Frame::data(Bytes::from(buf)))
}

pub fn payload_part(bytes: Bytes, data_type: &'static str) -> Message {
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

pub fn model_stream_error(code: u16, reason: &str) -> Message {
    model_stream_error_text(&code.to_string(), reason)
}

pub fn model_stream_error_text(code: &str, reason: &str) -> Message {
    exception(
        "ModelStreamError",
        serde_json::json!({ "ErrorCode": code, "Message": reason }),
    )
}

/// SageMaker's platform fault: the stream failed on AWS's side, and trying again usually
/// works.
pub fn internal_stream_failure(reason: &str) -> Message {
    exception(
        "InternalStreamFailure",
        serde_json::json!({ "Message": reason }),
    )
}

fn exception(kind: &str, body: serde_json::Value) -> Message {
    Message::new(Bytes::from(body.to_string()))
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("exception".into()),
        ))
        .add_header(Header::new(
            ":exception-type",
            HeaderValue::String(kind.to_string().into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ))
}

/// The WebSocket frame inside one SigV4 envelope (`:date`, `:chunk-signature`, payload =
/// the event); `None` for the empty envelope that ends the input.
pub fn unwrap_envelope(envelope: &Message) -> Result<Option<tungstenite::Message>, String> {
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
