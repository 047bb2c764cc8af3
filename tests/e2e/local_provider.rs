//! `--provider local` (issue 17): the local recognizer inside flux, behind the in-process
//! pipe. The fixtures' words within the WER bound, Updates that grow into the final text,
//! `--control`'s Configure and ForceEndTurn, a batch with --split-channels sharing one model,
//! raw PCM on stdin, `flux doctor`; and the refusals: a bad parameter as flux serve refuses it,
//! a missing model, flags that reach a server.
//!
//! The real model, as in `local_asr` (scripts/test.sh fetches it; CI always has it): the runs
//! that need it skip, with a note, where it is missing. They stream with --fast but one, and
//! each loads the model once.

use crate::common::*;
use crate::local_asr::{first_turn_updates, model_dir, normalize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `flux file PATH... --provider local` plus extra args.
fn local_file(paths: &[&Path], extra: &[&str]) -> std::process::Command {
    let mut c = flux();
    c.arg("file")
        .args(paths)
        .args(["--provider", "local"])
        .args(extra);
    c
}

/// How many times the run loaded the recognizer, by its status line.
fn loads(out: &std::process::Output) -> usize {
    stderr(out)
        .matches("flux: local recognizer: Moonshine base-en loaded from")
        .count()
}

#[test]
fn a_tale_of_two_cities_comes_back_within_the_wer_bound() {
    let Some(_) = model_dir() else { return };
    let reference = fixture("two_cities.txt");
    let out = run(
        local_file(
            &[&fixture("two_cities.wav")],
            &[
                "--fast",
                "--jsonl",
                "--expect-file",
                reference.to_str().unwrap(),
                "--max-wer",
                "0.06",
            ],
        ),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(loads(&out), 1, "{}", stderr(&out));
    let events = jsonl(&out);
    let line = |kind: &str| events.iter().find(|e| e["type"] == kind).unwrap().clone();
    let connected = line("flux.connected");
    assert_eq!(connected["provider"], "local", "{connected}");
    assert!(
        connected["url"]
            .as_str()
            .unwrap()
            .starts_with("local://moonshine-base-en/v2/listen?model=flux-general-en"),
        "{connected}"
    );
    // The server's own greeting, with the request id the summary reports.
    let id = line("Connected")["request_id"].clone();
    assert!(id.as_str().is_some_and(|s| !s.is_empty()));
    let assertions = line("flux.assertions");
    assert_eq!(assertions["passed"], true, "{assertions}");
    let summary = line("flux.summary");
    assert_eq!(
        (summary["request_id"].clone(), summary["exit_code"].clone()),
        (id, 0.into())
    );
    let text: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "EndOfTurn")
        .map(|e| normalize(e["transcript"].as_str().unwrap()))
        .collect();
    assert!(text.len() >= 8, "too few turns: {text:?}");
    assert!(text[0].starts_with("it was the best of times"), "{text:?}");
}

#[test]
fn updates_grow_into_the_end_of_turn_and_beckett_is_within_the_bound() {
    let Some(_) = model_dir() else { return };
    let reference = fixture("beckett.txt");
    // Real time, so the Updates' cadence is the one a live caller sees (with --fast the
    // audio outruns the decoding and Updates are thinned).
    let out = run(
        local_file(
            &[&fixture("beckett.wav")],
            &[
                "--jsonl",
                "--expect-file",
                reference.to_str().unwrap(),
                "--max-wer",
                "0.06",
            ],
        ),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("assertion passed"),
        "{}",
        stderr(&out)
    );
    let events = jsonl(&out);
    let (first_turn, updates) = first_turn_updates(&events);
    assert!(updates.len() >= 2, "too few Updates with text: {updates:?}");
    let words = |t: &str| t.split(' ').map(str::to_string).collect::<Vec<_>>();
    assert!(
        updates.iter().any(|u| words(u).len() >= 4),
        "the Updates did not grow: {updates:?}"
    );
    let end = first_turn
        .iter()
        .find(|e| e["event"] == "EndOfTurn")
        .expect("the first turn ends");
    let end_words = words(&normalize(end["transcript"].as_str().unwrap()));
    assert_eq!(end_words.join(" "), "ever tried ever failed no matter");
    // The last Update heads where the turn ended: all of it but its newest word (which may
    // still be misheard) begins the final text.
    let last = words(updates.last().unwrap());
    let settled = &last[..last.len() - 1];
    assert!(
        end_words.starts_with(settled),
        "the last Update {last:?} does not lead into {end_words:?}"
    );
}

#[test]
fn control_configures_thresholds_and_forces_the_end_of_a_turn() {
    let Some(_) = model_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.jsonl");
    // Mid-way through "Ever tried, ever failed, no matter" (0.4 s to 3.5 s of the audio).
    std::fs::write(
        &control,
        concat!(
            r#"{"type":"Configure","thresholds":{"eot_threshold":0.85},"at":0.5}"#,
            "\n",
            r#"{"type":"ForceEndTurn","at":1.2}"#,
            "\n",
        ),
    )
    .unwrap();
    let out = run(
        local_file(
            &[&fixture("beckett.wav")],
            &["--fast", "--jsonl", "--control", control.to_str().unwrap()],
        ),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let events = jsonl(&out);
    let configured = events
        .iter()
        .find(|e| e["type"] == "ConfigureSuccess")
        .unwrap_or_else(|| panic!("no ConfigureSuccess: {}", stdout(&out)));
    assert_eq!(
        configured["thresholds"]["eot_threshold"], 0.85,
        "{configured}"
    );
    let ends: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "EndOfTurn")
        .collect();
    // The forced end: the first turn ends where the audio had got to, and the rest of its
    // words open the next turn.
    let first_end = ends[0]["audio_window_end"].as_f64().unwrap();
    assert!((1.1..=1.4).contains(&first_end), "{}", ends[0]);
    assert!(
        normalize(ends[0]["transcript"].as_str().unwrap()).starts_with("ever"),
        "{}",
        ends[0]
    );
    // The last turn is ended by the ForceEndTurn flux sends at the end of the input.
    let last = ends.last().unwrap();
    assert_eq!(
        normalize(last["transcript"].as_str().unwrap()),
        "fail better"
    );
    let summary = events.iter().find(|e| e["type"] == "flux.summary").unwrap();
    assert_eq!(summary["unconfirmed_turns"], 0, "{summary}");
    assert_eq!(summary["turns"].as_u64().unwrap(), ends.len() as u64);
}

/// Beckett on the left, the first seconds of A Tale of Two Cities on the right, at 16 kHz.
fn call_wav(dir: &Path) -> PathBuf {
    let (left, rate) = read_wav_mono(&fixture("beckett.wav"));
    assert_eq!(rate, 16_000);
    let (cities, rate) = read_wav_mono(&fixture("two_cities.wav"));
    let right = resample_linear(&cities, rate, 16_000);
    let path = dir.join("call.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for (l, r) in left.iter().zip(&right) {
        w.write_sample((l * 32767.0).round() as i16).unwrap();
        w.write_sample((r * 32767.0).round() as i16).unwrap();
    }
    w.finalize().unwrap();
    path
}

#[test]
fn a_batch_of_split_calls_shares_one_loaded_model() {
    let Some(_) = model_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let call = call_wav(dir.path());
    // Two files, three streams (the call's two sides and the mono file): one model.
    let out = run(
        local_file(
            &[&call, &fixture("beckett.wav")],
            &["--fast", "--text", "--split-channels", "--asr-workers", "2"],
        ),
        None,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(loads(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("(2 workers)"), "{}", stderr(&out));
    let text = normalize(&stdout(&out));
    let call_name = call.display().to_string();
    let said = |prefix: &str| {
        stdout(&out)
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(normalize)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(
        said(&format!("{call_name}: ch0:")).contains("fail better"),
        "{text}"
    );
    assert!(
        said(&format!("{call_name}: ch1:")).contains("best of times"),
        "{text}"
    );
    assert!(
        said(&format!("{}: ch0:", fixture("beckett.wav").display())).contains("try again"),
        "{text}"
    );
}

#[test]
fn raw_pcm_on_stdin_is_recognized_quietly() {
    let Some(_) = model_dir() else { return };
    let (x, rate) = read_wav_mono(&fixture("beckett.wav"));
    let pcm: Vec<u8> = x
        .iter()
        .flat_map(|s| ((s * 32767.0).round() as i16).to_le_bytes())
        .collect();
    let mut cmd = flux();
    cmd.args(["listen", "--stdin", "--rate", &rate.to_string()])
        .args(["--provider", "local", "--fast", "--text", "-q"]);
    let out = run(cmd, Some(&pcm));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // -q: not even the model's status line.
    assert_eq!(stderr(&out), "");
    assert_eq!(
        normalize(&stdout(&out)),
        "ever tried ever failed no matter try again fail again fail better"
    );
}

#[test]
fn doctor_checks_the_model_instead_of_the_network() {
    let Some(_) = model_dir() else { return };
    let mut cmd = flux();
    cmd.args(["doctor", "--provider", "local", "--jsonl"]);
    let out = run(cmd, None);
    let checks = jsonl(&out);
    let check = |name: &str| {
        checks
            .iter()
            .find(|c| c["check"] == name)
            .unwrap_or_else(|| panic!("no {name} check: {}", stdout(&out)))
            .clone()
    };
    assert_eq!(check("model")["ok"], true, "{}", stdout(&out));
    assert_eq!(check("network")["ok"], true);
    let handshake = check("handshake");
    assert_eq!(handshake["ok"], true, "{handshake}");
    assert!(
        handshake["detail"].as_str().unwrap().contains("Connected"),
        "{handshake}"
    );
    assert!(
        !checks
            .iter()
            .any(|c| c["check"] == "dns" || c["check"] == "tls")
    );
    let summary = checks.last().unwrap();
    assert_eq!(summary["provider"], "local");
    // Only the machine's audio devices may fail here (a CI runner has none).
    let failed: Vec<&Value> = checks
        .iter()
        .filter(|c| c["type"] == "flux.doctor.check" && c["ok"] == false)
        .collect();
    assert!(failed.iter().all(|c| c["check"] == "audio"), "{failed:?}");
}

#[test]
fn a_missing_model_is_a_usage_error_naming_the_fix() {
    let missing = "/nonexistent/flux-model";
    let out = run(
        local_file(&[&fixture("beckett.wav")], &["--asr-model", missing]),
        None,
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("no Moonshine model at {missing}")),
        "{err}"
    );
    assert!(
        err.contains(&format!("scripts/fetch-model.sh {missing}")),
        "{err}"
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    // The same words as flux serve's.
    let mut serve = flux();
    serve.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--asr",
        "moonshine",
        "--asr-model",
        missing,
    ]);
    let served = run(serve, None);
    assert_eq!(code(&served), 2);
    assert_eq!(
        stderr(&served).lines().last(),
        err.lines().last(),
        "flux serve and --provider local disagree"
    );
    // flux doctor reports it as a failed check with the fix, and does not try the handshake.
    let mut doctor = flux();
    doctor.args([
        "doctor",
        "--provider",
        "local",
        "--jsonl",
        "--asr-model",
        missing,
    ]);
    let out = run(doctor, None);
    assert_eq!(code(&out), 10, "{}", stderr(&out));
    let checks = jsonl(&out);
    let model = checks.iter().find(|c| c["check"] == "model").unwrap();
    assert_eq!(model["ok"], false);
    assert_eq!(
        model["fix"].as_str().unwrap(),
        format!("run `scripts/fetch-model.sh {missing}` to fetch it (about 170 MB, from PyPI)")
    );
    let handshake = checks.iter().find(|c| c["check"] == "handshake").unwrap();
    assert!(
        handshake["detail"]
            .as_str()
            .unwrap()
            .contains("the model check failed"),
        "{handshake}"
    );
}

#[test]
fn a_damaged_model_is_refused_with_the_fix() {
    let Some(dir) = model_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for f in [
        "decoder_model_merged.onnx",
        "tokenizer.bin",
        "libonnxruntime.so.1.32.0",
    ] {
        std::os::unix::fs::symlink(dir.join(f), tmp.path().join(f)).unwrap();
    }
    std::fs::write(tmp.path().join("encoder_model.onnx"), b"not a model").unwrap();
    let out = run(
        local_file(
            &[&fixture("beckett.wav")],
            &["--asr-model", tmp.path().to_str().unwrap()],
        ),
        None,
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("encoder_model.onnx is damaged or not a Moonshine model"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "run `scripts/fetch-model.sh {}` again",
            tmp.path().display()
        )),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn a_bad_parameter_is_refused_as_flux_serve_refuses_it() {
    // No model is loaded for a refused parameter, so this runs without one. The words and the
    // exit status are those of the same flags sent to a flux serve.
    let serve = Serve::start(&[]);
    let wav = fixture("beckett.wav");
    for bad in [
        &["--eot-threshold", "1.5"][..],
        &["--model", "nova-3"],
        &["--language-hint", "de"],
        &["--eager-eot-threshold", "0.8", "--eot-threshold", "0.7"],
    ] {
        let local = run(local_file(&[&wav], bad), None);
        let mut remote = file_cmd(&serve, &wav, bad);
        remote.arg("--text");
        let remote = run(remote, None);
        assert_eq!(code(&local), 2, "{bad:?}: {}", stderr(&local));
        assert_eq!(code(&remote), 2, "{bad:?}: {}", stderr(&remote));
        assert_eq!(stderr(&local), stderr(&remote), "{bad:?}");
        assert!(loads(&local) == 0, "{bad:?}: {}", stderr(&local));
    }
}

#[test]
fn flags_that_reach_a_server_are_refused_by_name() {
    let wav = fixture("beckett.wav");
    for (args, flag) in [
        (&["--url", "ws://127.0.0.1:8787"][..], "--url"),
        (&["--api-key-file", "/dev/null"], "--api-key-file"),
        (&["--header", "X-Key: v"], "--header"),
        (&["--account-id", "abc"], "--account-id"),
        (&["--ca-cert", "/dev/null"], "--ca-cert"),
        (&["--endpoint", "flux-ep"], "--endpoint"),
    ] {
        let out = run(local_file(&[&wav], args), None);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("{flag} ")),
            "{args:?}: {}",
            stderr(&out)
        );
        assert_eq!(loads(&out), 0);
    }
    // FLUX_URL in the environment is named as such.
    let mut cmd = local_file(&[&wav], &[]);
    cmd.env("FLUX_URL", "ws://127.0.0.1:8787");
    let out = run(cmd, None);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("FLUX_URL is set"), "{}", stderr(&out));
    // And the local flags with another provider.
    let mut cmd = flux();
    cmd.arg("file")
        .arg(&wav)
        .args(["--url", "ws://127.0.0.1:1", "--asr-model", "/tmp"]);
    let out = run(cmd, None);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--asr-model is for --provider local"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_profile_chooses_local_and_its_model_directory() {
    // No model is needed: the directory named does not exist.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[default]\nprovider = \"local\"\nasr_model = \"models/none\"\nurl = \"ws://127.0.0.1:1\"\n",
    )
    .unwrap();
    let wav = fixture("beckett.wav");
    let mut cmd = flux();
    cmd.arg("--config").arg(&config).arg("file").arg(&wav);
    let out = run(cmd, None);
    // The profile's relative path is taken from the file's directory; its `url` (for another
    // provider) is ignored, not refused.
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let want = dir.path().join("models/none");
    assert!(
        stderr(&out).contains(&format!("no Moonshine model at {}", want.display())),
        "{}",
        stderr(&out)
    );
    // With another provider, the profile's asr_model is ignored in turn.
    let mut cmd = flux();
    cmd.arg("--config")
        .arg(&config)
        .arg("file")
        .arg(&wav)
        .args(["--provider", "deepgram", "--max-reconnects", "0", "--fast"]);
    let out = run(cmd, None);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(!stderr(&out).contains("--asr-model"), "{}", stderr(&out));
}
