//! A virtual microphone for end-to-end tests: ALSA's `file` plugin reading a raw file
//! (tests/alsa/mic.conf), selected per test process through `ALSA_CONFIG_PATH` and
//! `FLUX_TEST_MIC_FILE` on the `Command`, never globally. No hardware, module or daemon.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The system ALSA configuration, loaded before ours so that `null`, `plug` etc. exist.
const SYSTEM_CONF: &str = "/usr/share/alsa/alsa.conf";

/// A config file in tests/alsa/.
pub fn conf(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/alsa")
        .join(name)
}

/// Points `cmd` at the virtual devices in `conf_name`, fed from `raw`.
pub fn use_devices(cmd: &mut Command, conf_name: &str, raw: &Path) {
    let path = format!("{SYSTEM_CONF}:{}", conf(conf_name).display());
    cmd.env("ALSA_CONFIG_PATH", path)
        .env("FLUX_TEST_MIC_FILE", raw)
        // Lossless unless a test asks otherwise: the virtual device is unpaced (build notes
        // §2), so a whole fixture arrives in milliseconds and must fit in the ring.
        .env("FLUX_MIC_BUFFER_MS", "15000");
}

/// The capture format a device reports in `flux devices --jsonl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pub sample_format: String,
    pub sample_rate: u32,
    pub channels: u16,
}

impl Format {
    pub fn from_json(v: &Value) -> Format {
        Format {
            sample_format: v["sample_format"].as_str().unwrap().to_string(),
            sample_rate: v["sample_rate"].as_u64().unwrap() as u32,
            channels: v["channels"].as_u64().unwrap() as u16,
        }
    }

    /// Encodes interleaved samples as the device's raw format and decodes them back, which
    /// is exactly what flux will see from the device.
    pub fn encode(&self, samples: &[f32]) -> (Vec<u8>, Vec<f32>) {
        let mut bytes = Vec::new();
        let mut seen = Vec::new();
        for &x in samples {
            match self.sample_format.as_str() {
                "f32" => {
                    bytes.extend_from_slice(&x.to_le_bytes());
                    seen.push(x);
                }
                "i16" => {
                    let v = (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
                    bytes.extend_from_slice(&v.to_le_bytes());
                    seen.push(f32::from(v) / 32768.0);
                }
                "i32" => {
                    let v = (f64::from(x) * 2147483648.0)
                        .round()
                        .clamp(-2147483648.0, 2147483647.0) as i32;
                    bytes.extend_from_slice(&v.to_le_bytes());
                    seen.push((f64::from(v) / 2147483648.0) as f32);
                }
                other => panic!("test fixtures do not support sample format {other}"),
            }
        }
        (bytes, seen)
    }
}

/// A mono fixture as the device will deliver it: resampled to the device rate, copied into
/// every channel, encoded in its sample type, then padded with `pad_secs` of silence (after
/// its end the file plugin repeats its last period, so captures must stop inside the file).
pub struct Feed {
    /// What flux will read from the device, interleaved, padding included.
    pub samples: Vec<f32>,
    pub format: Format,
}

impl Feed {
    pub fn write(
        path: &Path,
        mono: &[f32],
        mono_rate: u32,
        format: &Format,
        pad_secs: f64,
    ) -> Feed {
        let at_rate = super::common::resample_linear(mono, mono_rate, format.sample_rate);
        let pad = (pad_secs * f64::from(format.sample_rate)) as usize;
        let ch = usize::from(format.channels);
        let interleaved: Vec<f32> = at_rate
            .iter()
            .chain(std::iter::repeat_n(&0.0, pad))
            .flat_map(|&x| std::iter::repeat_n(x, ch))
            .collect();
        let (bytes, samples) = format.encode(&interleaved);
        std::fs::write(path, bytes).unwrap();
        Feed {
            samples,
            format: format.clone(),
        }
    }

    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.format.channels)
    }
}
