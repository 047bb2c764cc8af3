//! `--fault SPEC`: misbehaviour on purpose, so clients can be tested against it.
//!
//! Grammar: `NAME[:KEY=VALUE[,KEY=VALUE]...]`. Every fault takes `conn=N` (1-based connection
//! number, counted over all connections the server accepts) to hit only that connection;
//! without it the fault hits every connection. `body=` and `description=` take the rest of
//! the spec, commas included, so they must come last. Times (`at=`) are seconds of audio
//! received on that connection, not wall time.

use crate::error::FluxError;
use std::time::Duration;

/// Shown with every bad spec.
pub const FORMS: &str = "valid forms: reject[:status=429][,body=TEXT] | drop:at=SECONDS | \
     error:at=SECONDS[,code=CODE][,close=1011][,description=TEXT] | stall:at=SECONDS | \
     malformed:at=SECONDS | unknown:at=SECONDS | typeless | delay:ms=MILLIS | \
     sagemaker-expired-token | sagemaker-unknown-endpoint | sagemaker-access-denied | \
     sagemaker-no-answer; each also takes conn=N (1-based) to hit only that connection (for \
     the sagemaker- faults, the Nth SageMaker request); body= and description= take the rest \
     of the spec";

pub const DEFAULT_REJECT_STATUS: u16 = 429;
pub const DEFAULT_ERROR_CODE: &str = "INTERNAL_SERVER_ERROR";
pub const DEFAULT_ERROR_DESCRIPTION: &str = "flux serve: injected fault";
pub const DEFAULT_ERROR_CLOSE: u16 = 1011;

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Refuse the upgrade with this status and body (a default JSON body when `None`).
    Reject { status: u16, body: Option<String> },
    /// Something that happens once, when `at` seconds of audio have been processed.
    Timed { at: f64, action: Action },
    /// Send `TurnInfo` without `type`, as Cloudflare's schema documents it.
    Typeless,
    /// Send every message this long after it was produced.
    Delay(Duration),
    /// How AWS answers a SageMaker request it refuses, or one it never answers; only the
    /// SageMaker front end (`--sagemaker-listen`) does these.
    SageMaker(Platform),
}

/// SageMaker Runtime's own answers, before any container is involved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// 403 `ExpiredTokenException`: the request's temporary credentials have expired.
    ExpiredToken,
    /// 400 `ValidationError`: no endpoint of that name in the account and region.
    UnknownEndpoint,
    /// 403 `AccessDeniedException`: the identity may not invoke the endpoint.
    AccessDenied,
    /// No response headers at all (the request hangs), for clients' request timeouts.
    NoAnswer,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Close the TCP connection without a WebSocket close.
    Drop,
    /// Send `Error` with this code and description, then close with `close`.
    Error {
        code: String,
        description: String,
        close: u16,
    },
    /// Send nothing more, but keep the socket open and keep reading.
    Stall,
    /// Send a text frame that is not JSON.
    Malformed,
    /// Send a message of a type Flux does not have.
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub kind: Kind,
    /// Only this connection (1-based), or every connection.
    pub conn: Option<u64>,
}

impl Fault {
    pub fn parse(spec: &str) -> Result<Fault, FluxError> {
        let fail =
            |why: String| FluxError::Usage(format!("invalid --fault `{spec}`: {why}; {FORMS}"));
        let (name, mut rest) = match spec.split_once(':') {
            Some((n, r)) => (n.trim(), r),
            None => (spec.trim(), ""),
        };
        let mut keys: Vec<(String, String)> = Vec::new();
        while !rest.is_empty() {
            let (pair, tail) = match rest.split_once(',') {
                Some((p, t)) => (p, t),
                None => (rest, ""),
            };
            let Some((key, value)) = pair.split_once('=') else {
                return Err(fail(format!("`{pair}` is not KEY=VALUE")));
            };
            let key = key.trim().to_string();
            if keys.iter().any(|(k, _)| *k == key) {
                return Err(fail(format!("`{key}` is given twice")));
            }
            if key == "body" || key == "description" {
                // Takes the rest of the spec, commas included (`pair` starts `rest`).
                let value = rest.split_once('=').map_or("", |(_, v)| v);
                keys.push((key, value.to_string()));
                break;
            }
            keys.push((key, value.trim().to_string()));
            rest = tail;
        }
        let allowed: &[&str] = match name {
            "reject" => &["status", "body"],
            "drop" | "stall" | "malformed" | "unknown" => &["at"],
            "error" => &["at", "code", "close", "description"],
            "typeless" => &[],
            "delay" => &["ms"],
            "sagemaker-expired-token"
            | "sagemaker-unknown-endpoint"
            | "sagemaker-access-denied"
            | "sagemaker-no-answer" => &[],
            other => return Err(fail(format!("unknown fault `{other}`"))),
        };
        let mut conn = None;
        for (key, value) in &keys {
            if key == "conn" {
                conn = Some(
                    value
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| {
                            fail(format!(
                                "conn={value} is not a connection number (1, 2, ...)"
                            ))
                        })?,
                );
            } else if !allowed.contains(&key.as_str()) {
                return Err(fail(format!("`{name}` takes no `{key}`")));
            }
        }
        let get = |k: &str| {
            keys.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let at = || -> Result<f64, FluxError> {
            match get("at") {
                None => Ok(0.0),
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| fail(format!("at={v} is not a number of seconds"))),
            }
        };
        let kind = match name {
            "reject" => {
                let status = match get("status") {
                    None => DEFAULT_REJECT_STATUS,
                    Some(v) => v
                        .parse::<u16>()
                        .ok()
                        .filter(|s| (400..=599).contains(s))
                        .ok_or_else(|| {
                            fail(format!("status={v} is not an HTTP error status (400-599)"))
                        })?,
                };
                Kind::Reject {
                    status,
                    body: get("body").map(str::to_string),
                }
            }
            "drop" => timed(at()?, Action::Drop),
            "stall" => timed(at()?, Action::Stall),
            "malformed" => timed(at()?, Action::Malformed),
            "unknown" => timed(at()?, Action::Unknown),
            "error" => {
                let close = match get("close") {
                    None => DEFAULT_ERROR_CLOSE,
                    Some(v) => v
                        .parse::<u16>()
                        .ok()
                        .filter(|c| sendable_close_code(*c))
                        .ok_or_else(|| {
                            fail(format!(
                                "close={v} is not a close code a server may send (1000-1003, \
                                 1007-1014, 3000-4999)"
                            ))
                        })?,
                };
                let code = get("code").unwrap_or(DEFAULT_ERROR_CODE);
                if code.is_empty() {
                    return Err(fail("code= is empty".into()));
                }
                timed(
                    at()?,
                    Action::Error {
                        code: code.to_string(),
                        description: get("description")
                            .unwrap_or(DEFAULT_ERROR_DESCRIPTION)
                            .to_string(),
                        close,
                    },
                )
            }
            "typeless" => Kind::Typeless,
            "delay" => {
                let v = get("ms").ok_or_else(|| fail("delay needs ms=MILLIS".into()))?;
                let ms = v
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| *ms <= 600_000)
                    .ok_or_else(|| {
                        fail(format!(
                            "ms={v} is not a whole number of milliseconds (at most 600000)"
                        ))
                    })?;
                Kind::Delay(Duration::from_millis(ms))
            }
            "sagemaker-expired-token" => Kind::SageMaker(Platform::ExpiredToken),
            "sagemaker-unknown-endpoint" => Kind::SageMaker(Platform::UnknownEndpoint),
            "sagemaker-access-denied" => Kind::SageMaker(Platform::AccessDenied),
            "sagemaker-no-answer" => Kind::SageMaker(Platform::NoAnswer),
            _ => unreachable!("names were checked above"),
        };
        Ok(Fault { kind, conn })
    }

    pub fn applies_to(&self, conn: u64) -> bool {
        self.conn.is_none_or(|n| n == conn)
    }
}

/// The SageMaker platform answer for the `request`th SageMaker request (1-based), if any.
pub fn platform_for(faults: &[Fault], request: u64) -> Option<Platform> {
    faults
        .iter()
        .filter(|f| f.applies_to(request))
        .find_map(|f| match f.kind {
            Kind::SageMaker(p) => Some(p),
            _ => None,
        })
}

/// A `sagemaker-` fault without the SageMaker front end would silently do nothing.
pub fn check_platform(faults: &[Fault], sagemaker_listen: bool) -> Result<(), FluxError> {
    if !sagemaker_listen && faults.iter().any(|f| matches!(f.kind, Kind::SageMaker(_))) {
        return Err(FluxError::Usage(
            "the sagemaker- faults act on the SageMaker front end: add --sagemaker-listen ADDR"
                .into(),
        ));
    }
    Ok(())
}

fn timed(at: f64, action: Action) -> Kind {
    Kind::Timed { at, action }
}

/// Close codes an endpoint may put on the wire (1004-1006 and 1015 are reserved).
fn sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Parses every `--fault`.
pub fn parse_all(specs: &[String]) -> Result<Vec<Fault>, FluxError> {
    specs.iter().map(|s| Fault::parse(s)).collect()
}

/// The faults of one connection, and which timed ones have fired.
#[derive(Debug, Clone, Default)]
pub struct ConnFaults {
    pub reject: Option<(u16, Option<String>)>,
    pub typeless: bool,
    pub delay: Duration,
    timed: Vec<(f64, Action)>,
}

impl ConnFaults {
    pub fn for_conn(faults: &[Fault], conn: u64) -> ConnFaults {
        let mut out = ConnFaults::default();
        for f in faults.iter().filter(|f| f.applies_to(conn)) {
            match &f.kind {
                Kind::Reject { status, body } => {
                    if out.reject.is_none() {
                        out.reject = Some((*status, body.clone()));
                    }
                }
                Kind::Timed { at, action } => out.timed.push((*at, action.clone())),
                Kind::Typeless => out.typeless = true,
                Kind::Delay(d) => out.delay = out.delay.max(*d),
                // The SageMaker front end answers these before any container connection.
                Kind::SageMaker(_) => {}
            }
        }
        // Earliest first; equal times keep the order they were given in.
        out.timed.sort_by(|a, b| a.0.total_cmp(&b.0));
        out
    }

    /// Timed faults due once `seconds` of audio have been processed; each is returned once.
    pub fn due(&mut self, seconds: f64) -> Vec<Action> {
        let n = self
            .timed
            .iter()
            .take_while(|(at, _)| *at <= seconds + 1e-9)
            .count();
        self.timed.drain(..n).map(|(_, a)| a).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses() {
        assert_eq!(
            Fault::parse("reject:status=503,conn=2,body={\"a\":1,\"b\":2}").unwrap(),
            Fault {
                kind: Kind::Reject {
                    status: 503,
                    body: Some("{\"a\":1,\"b\":2}".into())
                },
                conn: Some(2)
            }
        );
        assert_eq!(
            Fault::parse("reject").unwrap().kind,
            Kind::Reject {
                status: 429,
                body: None
            }
        );
        assert_eq!(
            Fault::parse("drop:at=2.5").unwrap().kind,
            timed(2.5, Action::Drop)
        );
        assert_eq!(
            Fault::parse("error:at=1,code=X_Y,close=4000,description=a, b=c")
                .unwrap()
                .kind,
            timed(
                1.0,
                Action::Error {
                    code: "X_Y".into(),
                    description: "a, b=c".into(),
                    close: 4000
                }
            )
        );
        assert_eq!(Fault::parse("typeless").unwrap().kind, Kind::Typeless);
        assert_eq!(
            Fault::parse("delay:ms=200").unwrap().kind,
            Kind::Delay(Duration::from_millis(200))
        );
        assert_eq!(
            Fault::parse("sagemaker-expired-token").unwrap().kind,
            Kind::SageMaker(Platform::ExpiredToken)
        );
        let only_second = [Fault::parse("sagemaker-no-answer:conn=2").unwrap()];
        assert_eq!(platform_for(&only_second, 1), None);
        assert_eq!(platform_for(&only_second, 2), Some(Platform::NoAnswer));
        assert!(check_platform(&only_second, false).is_err());
        assert!(check_platform(&only_second, true).is_ok());
        assert!(Fault::parse("stall:at=3,conn=1").unwrap().applies_to(1));
        assert!(!Fault::parse("stall:at=3,conn=1").unwrap().applies_to(2));
    }

    #[test]
    fn bad_specs_are_usage_errors_naming_the_spec() {
        for bad in [
            "explode",
            "drop:at=soon",
            "drop:at=-1",
            "drop:when=1",
            "reject:status=200",
            "error:close=1005",
            "delay",
            "delay:ms=x",
            "stall:at",
            "drop:conn=0",
            "drop:at=1,at=2",
            "sagemaker-access-denied:at=1",
        ] {
            let err = Fault::parse(bad).unwrap_err();
            let FluxError::Usage(msg) = err else {
                panic!("{bad}: not a usage error")
            };
            assert!(msg.contains(&format!("`{bad}`")), "{msg}");
            assert!(msg.contains("valid forms"), "{msg}");
        }
    }

    #[test]
    fn timed_faults_fire_once_in_time_order() {
        let faults = parse_all(&[
            "unknown:at=2".to_string(),
            "malformed:at=1".to_string(),
            "drop:at=3,conn=2".to_string(),
        ])
        .unwrap();
        let mut c1 = ConnFaults::for_conn(&faults, 1);
        assert!(c1.due(0.5).is_empty());
        assert_eq!(c1.due(2.0), vec![Action::Malformed, Action::Unknown]);
        assert!(c1.due(10.0).is_empty());
        let mut c2 = ConnFaults::for_conn(&faults, 2);
        assert_eq!(c2.due(5.0).len(), 3);
    }
}
