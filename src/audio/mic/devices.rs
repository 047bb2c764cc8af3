//! Input devices: listing (`flux devices`), picking one (`--device`), and turning cpal's errors
//! into messages that say what to try.
//!
//! Ids are cpal's stable `DeviceId` strings (`alsa:default`, `alsa:hw:CARD=0,DEV=0`): unlike
//! indices they survive reboots and re-plugging. `--device` takes an id, an id without its
//! host prefix, or any unique case-insensitive part of an id or description.

use crate::audio::AudioError;
use cpal::traits::{DeviceTrait, HostTrait};
use cpal::{Device, ErrorKind, Host, SampleFormat, SupportedStreamConfigRange};
use serde::Serialize;

/// Rates listed for devices that accept a continuous range (plug devices take anything).
const STANDARD_RATES: [u32; 12] = [
    8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400, 192000,
];

/// An input device as `flux devices` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeviceInfo {
    pub id: String,
    pub description: String,
    pub default: bool,
    /// Channel counts the device can capture.
    pub channels: Vec<u16>,
    /// Sample rates it can capture at (standard rates within continuous ranges).
    pub sample_rates: Vec<u32>,
    /// What `flux listen --mic` will capture: the device's own preferred format.
    pub default_config: Option<CaptureFormat>,
    /// Why the device could not be probed (busy, permission), when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A capture format: sample type, rate, channels.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct CaptureFormat {
    #[serde(serialize_with = "format_name")]
    pub sample_format: SampleFormat,
    pub sample_rate: u32,
    pub channels: u16,
}

fn format_name<S: serde::Serializer>(f: &SampleFormat, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&f.to_string())
}

impl std::fmt::Display for CaptureFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} Hz, {} ch, {}",
            self.sample_rate, self.channels, self.sample_format
        )
    }
}

/// A device found by enumeration, before anything is opened.
pub struct Candidate {
    pub device: Device,
    pub id: String,
    pub description: String,
    pub default: bool,
}

/// The platform's audio host. Unlike `cpal::default_host()`, which panics when the audio
/// system cannot start (e.g. a syntax error in ~/.asoundrc), this reports it.
pub fn host() -> Result<Host, AudioError> {
    let _quiet = QuietAlsa::new();
    let mut last = None;
    for id in cpal::available_hosts() {
        match cpal::host_from_id(id) {
            Ok(host) => return Ok(host),
            Err(e) => last = Some(e),
        }
    }
    Err(AudioError::Device {
        device: "audio system".into(),
        problem: format!(
            "cannot start ({}); check the ALSA configuration (~/.asoundrc, /etc/asound.conf, \
             ALSA_CONFIG_PATH)",
            last.map_or_else(|| "no audio host".to_string(), |e| e.to_string())
        ),
    })
}

/// Every device that may capture, default first, without opening any of them.
pub fn candidates(host: &Host) -> Result<Vec<Candidate>, AudioError> {
    let _quiet = QuietAlsa::new();
    let default_id = host
        .default_input_device()
        .and_then(|d| d.id().ok())
        .map(|id| id.to_string());
    let devices = host.input_devices().map_err(|e| AudioError::Device {
        device: "audio system".into(),
        problem: format!("cannot list input devices ({e}); check that ALSA works (`arecord -l`)"),
    })?;
    let mut out: Vec<Candidate> = devices
        .filter_map(|device| {
            let id = device.id().ok()?.to_string();
            let description = describe(&device);
            Some(Candidate {
                default: Some(&id) == default_id.as_ref(),
                device,
                id,
                description,
            })
        })
        .collect();
    // Some hosts do not enumerate their default device; list it anyway, first.
    if !out.iter().any(|c| c.default)
        && let Some(device) = host.default_input_device()
        && let Ok(id) = device.id()
    {
        let description = describe(&device);
        out.insert(
            0,
            Candidate {
                device,
                id: id.to_string(),
                description,
                default: true,
            },
        );
    }
    out.sort_by_key(|c| !c.default);
    Ok(out)
}

fn describe(device: &Device) -> String {
    match device.description() {
        Ok(d) => {
            let lines: Vec<&str> = d.extended().collect();
            if lines.is_empty() {
                d.name().to_string()
            } else {
                lines.join(", ")
            }
        }
        Err(_) => String::new(),
    }
}

/// Opens each candidate to learn its formats. Devices that cannot capture at all (output-only
/// or absent hardware behind a configured name) are left out; busy or forbidden ones are kept
/// with the reason, since the user may want to free them.
pub fn list(host: &Host) -> Result<Vec<DeviceInfo>, AudioError> {
    let candidates = candidates(host)?;
    let _quiet = QuietAlsa::new();
    Ok(candidates.iter().filter_map(probe).collect())
}

fn probe(c: &Candidate) -> Option<DeviceInfo> {
    let mut info = DeviceInfo {
        id: c.id.clone(),
        description: c.description.clone(),
        default: c.default,
        channels: Vec::new(),
        sample_rates: Vec::new(),
        default_config: None,
        error: None,
    };
    match c.device.supported_input_configs() {
        Ok(ranges) => {
            let ranges: Vec<SupportedStreamConfigRange> = ranges.collect();
            if ranges.is_empty() {
                return None;
            }
            (info.channels, info.sample_rates) = summarize(&ranges);
            info.default_config = c.device.default_input_config().ok().map(|d| CaptureFormat {
                sample_format: d.sample_format(),
                sample_rate: d.sample_rate(),
                channels: d.channels(),
            });
        }
        Err(e) => match e.kind() {
            ErrorKind::DeviceBusy | ErrorKind::PermissionDenied => {
                info.error = Some(kind_problem(e.kind()).to_string());
            }
            _ => return None,
        },
    }
    Some(info)
}

/// Channel counts and rates over all of a device's config ranges.
fn summarize(ranges: &[SupportedStreamConfigRange]) -> (Vec<u16>, Vec<u32>) {
    let mut channels: Vec<u16> = ranges.iter().map(|r| r.channels()).collect();
    channels.sort_unstable();
    channels.dedup();
    let mut rates = Vec::new();
    for r in ranges {
        let (lo, hi) = (r.min_sample_rate(), r.max_sample_rate());
        if lo == hi {
            rates.push(lo);
        } else {
            rates.extend(STANDARD_RATES.iter().filter(|&&x| (lo..=hi).contains(&x)));
        }
    }
    rates.sort_unstable();
    rates.dedup();
    (channels, rates)
}

/// The human table `flux devices` prints: default marked with `*`.
pub fn table(devices: &[DeviceInfo]) -> String {
    let rows: Vec<[String; 5]> = devices
        .iter()
        .map(|d| {
            [
                if d.default { "*".into() } else { " ".into() },
                d.id.clone(),
                span(&d.channels),
                span(&d.sample_rates),
                match (&d.default_config, &d.error) {
                    (_, Some(e)) => format!("unavailable: {}", e.split(';').next().unwrap_or(e)),
                    (Some(c), None) => format!("{}, {}", c, d.description),
                    (None, None) => d.description.clone(),
                },
            ]
        })
        .collect();
    let header = [
        String::new(),
        "ID".into(),
        "CHANNELS".into(),
        "RATES (Hz)".into(),
        "CAPTURES AS, DESCRIPTION".into(),
    ];
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `1-64`, `44100,48000`, or `8000-192000` for long runs.
fn span<T: std::fmt::Display + Copy>(values: &[T]) -> String {
    match values {
        [] => "-".into(),
        [one] => one.to_string(),
        [first, .., last] if values.len() > 3 => format!("{first}-{last}"),
        _ => values
            .iter()
            .map(T::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Picks the device for `--device` (or the default without it).
///
/// An exact id may name any configured device, so that one which cannot capture is opened
/// and its own error says why. Anything else is matched against the devices `flux devices`
/// lists, and a failed match lists those same devices: one list everywhere.
pub fn select(host: &Host, wanted: Option<&str>) -> Result<Candidate, AudioError> {
    let mut all = candidates(host)?;
    let index = match wanted {
        None => all.iter().position(|c| c.default),
        Some(w) => match exact_id(&all, w) {
            Some(i) => Some(i),
            None => {
                let listed: Vec<usize> = {
                    let _quiet = QuietAlsa::new();
                    (0..all.len())
                        .filter(|&i| probe(&all[i]).is_some())
                        .collect()
                };
                let names: Vec<(&str, &str)> = listed
                    .iter()
                    .map(|&i| (all[i].id.as_str(), all[i].description.as_str()))
                    .collect();
                listed.get(match_device(&names, w)?).copied()
            }
        },
    };
    match index {
        Some(i) if i < all.len() => Ok(all.swap_remove(i)),
        _ => Err(AudioError::Device {
            device: "microphone".into(),
            problem: "no audio input device found; connect a microphone (then check \
                      `flux devices`), or pipe audio in with `flux listen --stdin`"
                .into(),
        }),
    }
}

/// An id or an id without its `host:` prefix.
fn is_id(id: &str, wanted: &str) -> bool {
    id == wanted || id.split_once(':').is_some_and(|(_, rest)| rest == wanted)
}

fn exact_id(all: &[Candidate], wanted: &str) -> Option<usize> {
    all.iter().position(|c| is_id(&c.id, wanted))
}

/// Which of `devices` (id, description) `wanted` names: an exact id, an id without its
/// `host:` prefix, or a unique case-insensitive substring of an id or description.
pub fn match_device(devices: &[(&str, &str)], wanted: &str) -> Result<usize, AudioError> {
    if let Some(i) = devices.iter().position(|(id, _)| is_id(id, wanted)) {
        return Ok(i);
    }
    let needle = wanted.to_lowercase();
    let hits: Vec<usize> = devices
        .iter()
        .enumerate()
        .filter(|(_, (id, desc))| {
            id.to_lowercase().contains(&needle) || desc.to_lowercase().contains(&needle)
        })
        .map(|(i, _)| i)
        .collect();
    let list = |which: &mut dyn Iterator<Item = usize>| {
        which
            .filter_map(|i| devices.get(i))
            .map(|(id, desc)| {
                if desc.is_empty() {
                    format!("  {id}")
                } else {
                    format!("  {id}  ({desc})")
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    match hits.as_slice() {
        [one] => Ok(*one),
        [] => Err(AudioError::Device {
            device: format!("--device {wanted:?}"),
            problem: if devices.is_empty() {
                "no input devices at all; connect a microphone".into()
            } else {
                format!(
                    "no input device matches; pass an id or a unique part of one from \
                     `flux devices`. Input devices:\n{}",
                    list(&mut (0..devices.len()))
                )
            },
        }),
        many => Err(AudioError::Device {
            device: format!("--device {wanted:?}"),
            problem: format!(
                "matches {} input devices; pass a full id or a longer part of one:\n{}",
                many.len(),
                list(&mut many.iter().copied())
            ),
        }),
    }
}

/// What went wrong opening a device, and what to try.
pub fn open_error(id: &str, e: &cpal::Error) -> AudioError {
    let detail = e.message().map(|m| format!(" ({m})")).unwrap_or_default();
    AudioError::Device {
        device: id.to_string(),
        problem: format!("{}{detail}", kind_problem(e.kind())),
    }
}

/// One line per failure kind: the cause, then what to try.
pub fn kind_problem(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::DeviceBusy => {
            "the device is busy (another program is capturing from it); close that program, \
             or pick a shared device such as `default` (see `flux devices`)"
        }
        ErrorKind::PermissionDenied => {
            "permission denied; on Linux add yourself to the `audio` group \
             (`sudo usermod -aG audio $USER`, then log in again), or allow microphone access \
             in your system's privacy settings"
        }
        ErrorKind::DeviceNotAvailable => {
            "the device is not available (unplugged, or no such hardware); connect it, \
             or pick another one from `flux devices`"
        }
        ErrorKind::HostUnavailable => {
            "the audio system is not available; check that ALSA works (`arecord -l`)"
        }
        ErrorKind::UnsupportedConfig | ErrorKind::UnsupportedOperation => {
            "the device cannot capture audio in any format flux can use; pick another one \
             from `flux devices`"
        }
        ErrorKind::StreamInvalidated => {
            "the device stopped (its configuration changed or it was unplugged); start again"
        }
        _ => "the audio system reported an error; try another device from `flux devices`",
    }
}

/// Silences alsa-lib's own stderr chatter (e.g. "cannot find card '0'") while enumerating and
/// opening devices on this thread: flux reports failures itself, in one clear line.
pub(crate) struct QuietAlsa {
    #[cfg(target_os = "linux")]
    _handler: Option<std::rc::Rc<std::cell::RefCell<alsa::Output>>>,
}

impl QuietAlsa {
    pub(crate) fn new() -> QuietAlsa {
        QuietAlsa {
            #[cfg(target_os = "linux")]
            _handler: alsa::Output::local_error_handler().ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEVICES: [(&str, &str); 4] = [
        ("alsa:default", "Default Audio Device"),
        ("alsa:hw:CARD=0,DEV=0", "HDA Intel PCH, ALC892 Analog"),
        ("alsa:usbmic", "USB Audio Microphone"),
        ("alsa:usbmic2", "Second USB Audio Microphone"),
    ];

    fn problem(r: Result<usize, AudioError>) -> String {
        match r {
            Err(e) => e.to_string(),
            Ok(i) => panic!("matched {i}"),
        }
    }

    #[test]
    fn selection_rules() {
        let m = |w: &str| match_device(&DEVICES, w).ok();
        assert_eq!(
            m("alsa:usbmic"),
            Some(2),
            "exact id, though usbmic2 also contains it"
        );
        assert_eq!(m("usbmic"), Some(2), "exact id without the host prefix");
        assert_eq!(m("hw:CARD=0,DEV=0"), Some(1));
        assert_eq!(
            m("intel"),
            Some(1),
            "case-insensitive description substring"
        );
        assert_eq!(m("second"), Some(3));
        assert_eq!(m("DEFAULT"), Some(0));
    }

    #[test]
    fn ambiguous_and_unknown_names_list_candidates() {
        let msg = problem(match_device(&DEVICES, "USB"));
        assert!(msg.contains("matches 2 input devices"), "{msg}");
        assert!(
            msg.contains("alsa:usbmic ") && msg.contains("alsa:usbmic2"),
            "{msg}"
        );
        assert!(!msg.contains("alsa:default"), "{msg}");
        let msg = problem(match_device(&DEVICES, "bluetooth"));
        assert!(
            msg.contains("--device \"bluetooth\": no input device matches"),
            "{msg}"
        );
        for (id, _) in DEVICES {
            assert!(msg.contains(id), "{msg}");
        }
        let msg = problem(match_device(&[], "x"));
        assert!(msg.contains("no input devices at all"), "{msg}");
    }

    #[test]
    fn error_kinds_say_what_to_try() {
        let e = open_error("alsa:hw:0", &cpal::Error::new(ErrorKind::DeviceBusy));
        assert!(matches!(e, AudioError::Device { .. }));
        let msg = e.to_string();
        assert!(msg.starts_with("alsa:hw:0: the device is busy"), "{msg}");
        assert!(kind_problem(ErrorKind::PermissionDenied).contains("audio` group"));
        assert!(kind_problem(ErrorKind::DeviceNotAvailable).contains("flux devices"));
    }

    #[test]
    fn table_marks_the_default_and_shortens_ranges() {
        let d = |id: &str, default| DeviceInfo {
            id: id.into(),
            description: "Virtual mic".into(),
            default,
            channels: (1..=64).collect(),
            sample_rates: vec![16000, 48000],
            default_config: Some(CaptureFormat {
                sample_format: SampleFormat::F32,
                sample_rate: 48000,
                channels: 2,
            }),
            error: None,
        };
        let t = table(&[d("alsa:default", true), d("alsa:mic", false)]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("   ID"), "{t}");
        assert_eq!(
            lines[1],
            "*  alsa:default  1-64      16000,48000  48000 Hz, 2 ch, f32, Virtual mic"
        );
        assert!(lines[2].starts_with("   alsa:mic "), "{t}");
    }

    #[test]
    fn rates_and_channels_are_summarized() {
        use cpal::SupportedBufferSize;
        let r = |ch, lo, hi| {
            SupportedStreamConfigRange::new(
                ch,
                lo,
                hi,
                SupportedBufferSize::Unknown,
                SampleFormat::I16,
            )
        };
        let (ch, rates) = summarize(&[r(2, 44100, 44100), r(1, 48000, 48000), r(2, 8000, 16000)]);
        assert_eq!(ch, [1, 2]);
        assert_eq!(rates, [8000, 11025, 16000, 44100, 48000]);
    }
}
