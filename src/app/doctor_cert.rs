//! What `flux doctor` says about a server's certificate: who issued it, for whom, and when it
//! expires, read from its DER with a few lines of ASN.1 rather than a certificate library,
//! because these three fields are all flux ever shows. Verification is rustls's job; this
//! only describes a certificate rustls has already accepted.

/// The parts of a certificate people ask about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// The issuer's distinguished name, e.g. `C=US, O=Let's Encrypt, CN=R11`.
    pub issuer: String,
    pub subject: String,
    /// `notAfter` as `YYYY-MM-DD HH:MM:SS UTC`.
    pub not_after: String,
    /// `notAfter` in seconds since the Unix epoch.
    pub not_after_unix: i64,
}

/// Reads a DER certificate; `None` if it is not one this reader understands.
pub fn summarize(der: &[u8]) -> Option<CertSummary> {
    let (tag, cert, _) = tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    let mut next = || {
        let (tag, content, after) = tlv(rest)?;
        rest = after;
        Some((tag, content))
    };
    let (mut tag, _) = next()?;
    if tag == VERSION {
        tag = next()?.0; // the serial number
    }
    if tag != INTEGER {
        return None;
    }
    let (_, _signature) = next()?;
    let (_, issuer) = next()?;
    let (_, validity) = next()?;
    let (_, subject) = next()?;
    let (_, _, after_not_before) = tlv(validity)?;
    let (time_tag, not_after, _) = tlv(after_not_before)?;
    let (text, unix) = time(time_tag, not_after)?;
    Some(CertSummary {
        issuer: name(issuer),
        subject: name(subject),
        not_after: text,
        not_after_unix: unix,
    })
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const VERSION: u8 = 0xA0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// One tag-length-value: (tag, content, what follows).
fn tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// A distinguished name as `C=.., O=.., CN=..`, in the certificate's order; attributes
/// without a short name are left out.
fn name(mut rdns: &[u8]) -> String {
    let mut parts = Vec::new();
    while let Some((tag, set, rest)) = tlv(rdns) {
        rdns = rest;
        if tag != SET {
            continue;
        }
        let mut attrs = set;
        while let Some((_, attr, rest)) = tlv(attrs) {
            attrs = rest;
            let Some((OID, oid, value)) = tlv(attr) else {
                continue;
            };
            let Some((_, value, _)) = tlv(value) else {
                continue;
            };
            let short = match oid {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x06] => "C",
                [0x55, 0x04, 0x0A] => "O",
                [0x55, 0x04, 0x0B] => "OU",
                _ => continue,
            };
            let text = crate::protocol::sanitize::sanitize(&String::from_utf8_lossy(value));
            parts.push(format!("{short}={text}"));
        }
    }
    if parts.is_empty() {
        "(no name)".into()
    } else {
        parts.join(", ")
    }
}

/// A UTCTime or GeneralizedTime in UTC (`Z`), as text and as Unix seconds.
fn time(tag: u8, bytes: &[u8]) -> Option<(String, i64)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let digits = text.strip_suffix('Z')?;
    let (year, rest) = match tag {
        UTC_TIME if digits.len() == 12 => {
            let yy: i64 = digits[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        GENERALIZED_TIME if digits.len() == 14 => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |i: usize| rest[i..i + 2].parse::<i64>().ok();
    let (month, day, hour, minute, second) =
        (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    let unix = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some((
        format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC"),
        unix,
    ))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

    #[test]
    fn issuer_subject_and_expiry_of_a_real_certificate() {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::OrganizationName, "Flux Tests");
        ca.distinguished_name
            .push(DnType::CommonName, "flux test CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf.not_after = rcgen::date_time_ymd(2031, 7, 4);
        let cert = leaf.signed_by(&KeyPair::generate().unwrap(), &ca).unwrap();
        let s = summarize(cert.der()).unwrap();
        // In the certificate's own order, which rcgen chooses.
        let mut issuer: Vec<&str> = s.issuer.split(", ").collect();
        issuer.sort_unstable();
        assert_eq!(issuer, ["CN=flux test CA", "O=Flux Tests"]);
        assert_eq!(s.subject, "CN=localhost");
        assert_eq!(s.not_after, "2031-07-04 00:00:00 UTC");
        assert_eq!(s.not_after_unix, 1_940_889_600);
    }

    #[test]
    fn times_and_garbage() {
        assert_eq!(
            time(UTC_TIME, b"491231235959Z").unwrap().0,
            "2049-12-31 23:59:59 UTC"
        );
        assert_eq!(time(UTC_TIME, b"500101000000Z").unwrap().1, -631_152_000);
        assert_eq!(time(GENERALIZED_TIME, b"19700101000000Z").unwrap().1, 0);
        assert!(time(UTC_TIME, b"5001010000Z").is_none());
        assert!(time(GENERALIZED_TIME, b"2024010100000aZ").is_none());
        for junk in [
            &b""[..],
            b"\x30",
            b"\x30\x85\x01",
            b"\x02\x01\x00",
            b"\x30\x03\x30\x01",
        ] {
            assert!(summarize(junk).is_none());
        }
    }
}
