//! The AWS SDK's HTTP client for SageMaker's stream: one HTTP/2 connection per stream, over
//! tokio-rustls on ring with the same trust as `wss://` (webpki roots plus `--ca-cert`).
//!
//! flux brings its own instead of the SDK's default client because that one builds aws-lc (a
//! C and assembly build, slow on two cores), and because this way a certificate problem is
//! explained in the same words, and fixed with the same flag, as for every other provider.
//! SageMaker picks HTTP/2 by ALPN only, so the client offers `h2` and nothing else.

use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use std::sync::Arc;
use tokio::net::TcpStream;

/// A connection that failed before any HTTP was spoken, already in words, with what to do.
/// The transport finds it in the SDK's error chain to tell TLS trouble from network trouble.
#[derive(Debug)]
pub struct ConnectFailed {
    pub tls: bool,
    pub message: String,
}

impl std::fmt::Display for ConnectFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectFailed {}

/// An HTTP client for the SDK that opens every request on its own HTTP/2 connection with
/// this TLS setup (ALPN is forced to `h2`).
pub fn client(tls: &ClientConfig) -> SharedHttpClient {
    let mut tls = tls.clone();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let connector = SharedHttpConnector::new(H2 { tls: Arc::new(tls) });
    http_client_fn(move |_, _| connector.clone())
}

#[derive(Debug, Clone)]
struct H2 {
    tls: Arc<ClientConfig>,
}

impl HttpConnector for H2 {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let tls = self.tls.clone();
        HttpConnectorFuture::new(async move { send(tls, request).await })
    }
}

fn failed(tls: bool, message: String) -> ConnectorError {
    ConnectorError::io(Box::new(ConnectFailed { tls, message }))
}

async fn send(
    tls: Arc<ClientConfig>,
    request: HttpRequest,
) -> Result<HttpResponse, ConnectorError> {
    let request = request
        .try_into_http1x()
        .map_err(|e| ConnectorError::user(Box::new(e)))?;
    let uri = request.uri().clone();
    if uri.scheme_str() != Some("https") {
        return Err(failed(
            false,
            format!("SageMaker's stream needs https://, not `{uri}`"),
        ));
    }
    let host = uri
        .host()
        .unwrap_or("")
        .trim_matches(['[', ']'])
        .to_string();
    let port = uri.port_u16().unwrap_or(443);
    let shown = format!("{host}:{port}");
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| failed(false, format!("cannot connect to {shown}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(host.clone())
        .map_err(|_| failed(false, format!("`{host}` is not a valid TLS server name")))?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| {
            if crate::transport::tls::is_tls_error(&e) {
                failed(true, crate::transport::tls::explain(&e, &shown))
            } else {
                failed(
                    false,
                    format!("connection to {shown} failed during TLS: {e}"),
                )
            }
        })?;
    if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
        return Err(failed(
            true,
            format!(
                "{shown} does not offer HTTP/2 (ALPN h2), which SageMaker's bidirectional stream \
                 needs; check --url"
            ),
        ));
    }
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| failed(false, format!("HTTP/2 handshake with {shown} failed: {e}")))?;
    // The connection carries this one stream; it ends when both directions have.
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| ConnectorError::io(Box::new(e)))?;
    let (parts, body) = response.into_parts();
    let response = hyper::Response::from_parts(parts, SdkBody::from_body_1_x(body));
    HttpResponse::try_from(response).map_err(|e| ConnectorError::other(Box::new(e), None))
}
