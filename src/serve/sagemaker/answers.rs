//! What SageMaker Runtime itself answers, before any container is involved: AWS's JSON errors,
//! the SigV4 form check, and the refusals `--fault sagemaker-…` asks for.

use super::Body;
use crate::provider::Secret;
use crate::serve::fault::Platform;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Response, StatusCode};

/// The account the emulator's answers name (AWS's documentation placeholder form).
pub const ACCOUNT: &str = "000000000000";
/// How long a `sagemaker-no-answer` request is held (while the client waits) before a 504.
pub const NO_ANSWER_HOLD: std::time::Duration = std::time::Duration::from_secs(600);

/// An AWS JSON error: status, `x-amzn-errortype` (which the SDKs read the error's kind
/// from) and `{"message": …}`, with a request id as SageMaker sends one.
pub fn aws_error(status: u16, kind: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "message": message }).to_string();
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .header("x-amzn-errortype", kind)
        .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string())
        .body(Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).map_err(|e| match e {}).boxed()))
}

/// SigV4 in form only: the scheme, `Credential=AKID/DATE/REGION/sagemaker/aws4_request`,
/// `SignedHeaders=`, `Signature=`, and `x-amz-date`. With `--api-key`, AKID must match it.
pub fn check_sigv4(
    authorization: Option<&str>,
    date: Option<&str>,
    api_key: Option<&Secret>,
) -> Result<(), Box<Response<Body>>> {
    let missing = |what: &str| {
        Box::new(aws_error(
            403,
            "IncompleteSignatureException",
            &format!("Authorization header requires {what} (SigV4)"),
        ))
    };
    let Some(auth) = authorization else {
        return Err(Box::new(aws_error(
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        )));
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
    if let Some(key) = api_key
        && scope[0] != key.expose()
    {
        return Err(Box::new(aws_error(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )));
    }
    Ok(())
}

/// The region in a SigV4 `Credential=AKID/DATE/REGION/…` scope.
pub fn signing_region(authorization: &str) -> Option<&str> {
    let credential = authorization.split("Credential=").nth(1)?;
    credential
        .split(['/', ','])
        .nth(2)
        .filter(|r| !r.is_empty())
}

/// What AWS answers for a refused request (`--fault sagemaker-…`), in its words. The
/// unknown endpoint's answer is SageMaker Runtime's for `InvokeEndpoint` (400
/// `ValidationError`, "Endpoint NAME of account ACCOUNT not found."); AWS does not document
/// the bidirectional stream's, so this is assumed to match.
pub fn platform_answer(platform: Platform, name: &str, region: &str) -> Response<Body> {
    let action = "sagemaker:InvokeEndpointWithBidirectionalStream";
    match platform {
        Platform::ExpiredToken => aws_error(
            403,
            "ExpiredTokenException",
            "The security token included in the request is expired",
        ),
        Platform::UnknownEndpoint => aws_error(
            400,
            "ValidationError",
            &format!("Endpoint {name} of account {ACCOUNT} not found."),
        ),
        Platform::AccessDenied => aws_error(
            403,
            "AccessDeniedException",
            &format!(
                "User: arn:aws:iam::{ACCOUNT}:user/flux-serve is not authorized to perform: \
                 {action} on resource: arn:aws:sagemaker:{region}:{ACCOUNT}:endpoint/{} \
                 because no identity-based policy allows the {action} action",
                name.to_ascii_lowercase()
            ),
        ),
        // What comes after the hold (see `NO_ANSWER_HOLD`), if the client still waits.
        Platform::NoAnswer => aws_error(
            504,
            "InternalServerError",
            "flux serve: sagemaker-no-answer",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDX/20261130/eu-west-1/sagemaker/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";

    #[test]
    fn sigv4_in_form_passes_and_each_missing_part_is_named() {
        assert!(check_sigv4(Some(AUTH), Some("20261130T000000Z"), None).is_ok());
        assert_eq!(signing_region(AUTH), Some("eu-west-1"));
        let status = |auth: Option<&str>, date: Option<&str>, key: Option<&Secret>| {
            check_sigv4(auth, date, key).unwrap_err().status().as_u16()
        };
        assert_eq!(status(None, Some("d"), None), 403);
        assert_eq!(status(Some("Bearer x"), Some("d"), None), 403);
        assert_eq!(status(Some(AUTH), None, None), 403);
        let other = Secret::new("AKIDOTHER");
        assert_eq!(status(Some(AUTH), Some("d"), Some(&other)), 403);
        let right = Secret::new("AKIDX");
        assert!(check_sigv4(Some(AUTH), Some("d"), Some(&right)).is_ok());
        let wrong_service = AUTH.replace("/sagemaker/", "/s3/");
        assert_eq!(status(Some(&wrong_service), Some("d"), None), 403);
    }

    #[test]
    fn platform_answers_carry_aws_error_types() {
        for (platform, status, kind) in [
            (Platform::ExpiredToken, 403, "ExpiredTokenException"),
            (Platform::UnknownEndpoint, 400, "ValidationError"),
            (Platform::AccessDenied, 403, "AccessDeniedException"),
        ] {
            let r = platform_answer(platform, "My-Flux", "eu-west-1");
            assert_eq!(r.status().as_u16(), status);
            assert_eq!(r.headers()["x-amzn-errortype"], kind);
        }
    }
}
