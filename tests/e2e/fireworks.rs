//! `--provider fireworks` against `flux serve`'s Fireworks dialect over real sockets: the same
//! turns as the Deepgram dialect on the same audio (WAV and stdin PCM), JSONL with the raw
//! messages and the derived turns, assertions, a reconnect, the trace ending with a slow
//! server, refused keys, parameters and flags with their exit codes, and no key in any output.

use crate::common::{Serve, code, file_cmd, fixture, flux, jsonl, run, stderr, stdout};
use crate::serve_support::fixture_at;
use serde_json::Value;
use std::process::{Command, Output};

const KEY: &str = "fw-test-key";
const V1: &str = "/v1/audio/transcriptions/streaming";
const V2: &str = "/v2/audio/transcriptions/streaming";

fn script() -> Vec<String> {
    std::fs::read_to_string(fixture("two_cities.txt"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn serve(extra: &[&str]) -> Serve {
    let script = fixture("two_cities.txt");
    let mut args = vec!["--api-key", KEY, "--script", script.to_str().unwrap()];
    args.extend_from_slice(extra);
    Serve::start(&args)
}

/// `flux file two_cities.wav --provider fireworks --url SERVE/PATH --fast` plus `extra`.
fn fireworks(serve: &Serve, path: &str, key: &str, extra: &[&str]) -> Command {
    let mut c = flux();
    c.env("FIREWORKS_API_KEY", key)
        .arg("file")
        .arg(fixture("two_cities.wav"))
        .args(["--provider", "fireworks", "--url"])
        .arg(format!("{}{path}", serve.url))
        .arg("--fast")
        .args(extra);
    c
}

fn lines(o: &Output) -> Vec<String> {
    stdout(o).lines().map(str::to_string).collect()
}

#[test]
fn text_matches_the_deepgram_dialect_and_the_script() {
    let s = serve(&[]);
    let fw = run(fireworks(&s, V1, KEY, &["--text"]), None);
    assert_eq!(code(&fw), 0, "{}", stderr(&fw));
    let mut dg = file_cmd(&s, &fixture("two_cities.wav"), &["--text"]);
    dg.env("DEEPGRAM_API_KEY", KEY);
    let dg = run(dg, None);
    assert_eq!(code(&dg), 0, "{}", stderr(&dg));
    assert_eq!(lines(&fw), lines(&dg));
    assert_eq!(lines(&fw), script());
    // Every frame flux sent was within Fireworks' 50–400 ms.
    for a in s.log_kind("audio") {
        let bytes = a["bytes"].as_u64().unwrap();
        assert!((1600..=12800).contains(&bytes), "{a}");
    }
    // The v2 stand-in sends segment ids as strings: the same turns come out.
    let v2 = run(fireworks(&s, V2, KEY, &["--text"]), None);
    assert_eq!(code(&v2), 0, "{}", stderr(&v2));
    assert_eq!(lines(&v2), script());
}

#[test]
fn stdin_pcm_gives_the_same_turns() {
    let s = serve(&[]);
    let pcm = fixture_at("two_cities.wav", 16000);
    let mut c = flux();
    c.env("FIREWORKS_API_KEY", KEY)
        .args([
            "listen",
            "--stdin",
            "--rate",
            "16000",
            "--provider",
            "fireworks",
        ])
        .args(["--url", &format!("{}{V1}", s.url), "--fast", "--text"]);
    let out = run(c, Some(&pcm));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(lines(&out), script());
}

#[test]
fn jsonl_keeps_every_raw_message_and_marks_derived_turns() {
    let s = serve(&[]);
    let out = run(fireworks(&s, V1, KEY, &["--jsonl"]), None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let doc = include_str!("../../docs/jsonl.md");
    let events = jsonl(&out);
    let mut raw = 0;
    let mut ends = Vec::new();
    for e in &events {
        let kind = e["type"].as_str().unwrap();
        match kind {
            "FireworksTranscript" => {
                raw += 1;
                assert!(e["segments"].is_array(), "{e}");
            }
            "FireworksTrace" => {
                assert!(e["trace_id"].as_str().unwrap().starts_with("final-"), "{e}")
            }
            "TurnInfo" => {
                assert_eq!(e["derived"], true, "{e}");
                if e["event"] == "EndOfTurn" {
                    ends.push(e["transcript"].as_str().unwrap().to_string());
                    assert!(e["words"][0]["start"].is_number(), "{e}");
                }
            }
            k if k.starts_with("flux.") => {}
            other => panic!("unexpected type {other}: {e}"),
        }
        assert!(
            doc.contains(&format!("`{kind}`")),
            "{kind} is not in docs/jsonl.md"
        );
    }
    assert!(raw > 14, "{raw}");
    assert_eq!(ends, script());
    assert!(doc.contains("`derived`"));
    // The stream ended by trace: one trace request, answered, and a clean close.
    let controls = s.log_kind("control");
    assert_eq!(controls.len(), 1, "{controls:?}");
    assert_eq!(controls[0]["message"]["object"], "stt.input.trace");
    let summary = events.last().unwrap();
    assert_eq!(summary["type"], "flux.summary", "{summary}");
    // The parameters went in the query, the key in a header.
    let hs = &s.log_kind("handshake")[0];
    let query = hs["query"].as_str().unwrap();
    assert!(query.contains("response_format=verbose_json"), "{query}");
    assert!(
        query.contains("timestamp_granularities=word%2Csegment"),
        "{query}"
    );
    assert!(!query.contains(KEY) && hs["headers"]["authorization"].is_string());
}

#[test]
fn assertions_run_on_derived_turns() {
    let s = serve(&[]);
    let expect = fixture("two_cities.txt");
    let ok = run(
        fireworks(
            &s,
            V1,
            KEY,
            &[
                "--text",
                "--expect-turns",
                "14",
                "--expect-file",
                expect.to_str().unwrap(),
            ],
        ),
        None,
    );
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    let bad = run(
        fireworks(&s, V1, KEY, &["--text", "--expect-turns", "3"]),
        None,
    );
    assert_eq!(code(&bad), 7, "{}", stderr(&bad));
}

#[test]
fn a_drop_mid_segment_reconnects_without_losing_or_doubling_text() {
    // 10.0 s falls inside a turn of two_cities.wav.
    let s = serve(&["--fault", "drop:at=10.0,conn=1"]);
    let out = run(fireworks(&s, V1, KEY, &["--jsonl"]), None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let events = jsonl(&out);
    let reconnected: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "flux.reconnected")
        .collect();
    assert_eq!(reconnected.len(), 1, "{}", stdout(&out));
    assert!(reconnected[0]["replayed_seconds"].as_f64().unwrap() > 0.0);
    let ends: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "TurnInfo" && e["event"] == "EndOfTurn")
        .collect();
    let texts: Vec<String> = ends
        .iter()
        .map(|e| e["transcript"].as_str().unwrap().to_string())
        .collect();
    // flux serve starts its script again on each connection, so the reference is the
    // Deepgram dialect under the same drop: the same turns, none lost or doubled.
    let dg_serve = serve(&["--fault", "drop:at=10.0,conn=1"]);
    let mut dg = file_cmd(&dg_serve, &fixture("two_cities.wav"), &["--text"]);
    dg.env("DEEPGRAM_API_KEY", KEY);
    let dg = run(dg, None);
    assert_eq!(code(&dg), 0, "{}", stderr(&dg));
    assert_eq!(texts, lines(&dg));
    assert_eq!(texts.len(), script().len());
    // Turn indices and times continue across the new connection.
    for (i, e) in ends.iter().enumerate() {
        assert_eq!(e["turn_index"], i as u64, "{e}");
    }
    let times: Vec<f64> = ends
        .iter()
        .map(|e| e["audio_window_end"].as_f64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
}

#[test]
fn the_end_waits_for_the_trace_when_the_server_is_slow() {
    // Every message arrives 1.5 s late: the last turns come after all audio has gone.
    let s = serve(&["--fault", "delay:ms=1500"]);
    let out = run(fireworks(&s, V1, KEY, &["--text"]), None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(lines(&out), script());
}

#[test]
fn ending_the_turn_and_configure_are_refused_and_state_clear_is_sent() {
    let s = serve(&[]);
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.jsonl");
    std::fs::write(
        &control,
        "{\"type\":\"ForceEndTurn\"}\n{\"type\":\"Configure\",\"thresholds\":{\"eot_threshold\":0.8}}\n\
         {\"object\":\"stt.state.clear\",\"reset_id\":\"r-7\",\"at\":5}\n",
    )
    .unwrap();
    let mut c = fireworks(&s, V1, KEY, &["--jsonl", "--control"]);
    c.arg(&control);
    let out = run(c, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let codes: Vec<String> = jsonl(&out)
        .iter()
        .filter(|e| e["type"] == "flux.warning")
        .map(|e| e["code"].as_str().unwrap().to_string())
        .collect();
    assert!(
        codes.contains(&"force_end_turn_unsupported".to_string()),
        "{codes:?}"
    );
    assert!(
        codes.contains(&"configure_unsupported".to_string()),
        "{codes:?}"
    );
    // stt.state.clear went out at 5 s and its answer is in the JSONL.
    let cleared: Vec<Value> = jsonl(&out)
        .into_iter()
        .filter(|e| e["type"] == "FireworksStateCleared")
        .collect();
    assert_eq!(cleared.len(), 1, "{}", stdout(&out));
    assert_eq!(cleared[0]["reset_id"], "r-7");
    // Nothing but audio, the clear and the trace reached the server.
    let sent: Vec<Value> = s
        .log_kind("control")
        .iter()
        .map(|c| c["message"]["object"].clone())
        .collect();
    assert_eq!(sent, vec!["stt.state.clear", "stt.input.trace"]);
    // Other providers refuse it.
    let mut dg = file_cmd(&s, &fixture("two_cities.wav"), &["--jsonl", "--control"]);
    dg.env("DEEPGRAM_API_KEY", KEY).arg(&control);
    let dg = run(dg, None);
    assert_eq!(code(&dg), 0, "{}", stderr(&dg));
    assert!(
        jsonl(&dg)
            .iter()
            .any(|e| e["type"] == "flux.warning" && e["code"] == "clear_state_unsupported"),
        "{}",
        stdout(&dg)
    );
}

#[test]
fn a_refused_key_exits_3_and_no_key_is_ever_shown() {
    let s = serve(&[]);
    let canary = "fw-CANARY-0123456789";
    let out = run(fireworks(&s, V1, canary, &["--jsonl"]), None);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("FIREWORKS_API_KEY"),
        "{}",
        stderr(&out)
    );
    // By file too, and a run that works: the key never appears anywhere.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, format!("{canary}\n")).unwrap();
    let good = serve_with_key(canary);
    let mut c = fireworks(&good, V1, "", &["--jsonl", "--api-key-file"]);
    c.env_remove("FIREWORKS_API_KEY").arg(&file);
    let ok = run(c, None);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    let log = std::fs::read_to_string(&good.log).unwrap();
    for text in [stdout(&out), stderr(&out), stdout(&ok), stderr(&ok), log] {
        assert!(!text.to_lowercase().contains("canary"), "{text}");
    }
    // No key at all: exit 3, naming where to put one.
    let mut none = fireworks(&s, V1, "", &["--text"]);
    none.env_remove("FIREWORKS_API_KEY");
    let none = run(none, None);
    assert_eq!(code(&none), 3, "{}", stderr(&none));
}

fn serve_with_key(key: &str) -> Serve {
    let script = fixture("two_cities.txt");
    Serve::start(&["--api-key", key, "--script", script.to_str().unwrap()])
}

#[test]
fn bad_parameters_exit_2_from_flux_or_from_the_server() {
    let s = serve(&[]);
    // Refused by flux before connecting.
    let out = run(fireworks(&s, V1, KEY, &["--language", "english"]), None);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("--language"), "{}", stderr(&out));
    // Refused by the server (400 for a parameter it does not know).
    let out = run(
        fireworks(&s, &format!("{V1}?vad_kwargs=x"), KEY, &["--text"]),
        None,
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("vad_kwargs"), "{}", stderr(&out));
}

#[test]
fn flux_only_flags_and_fireworks_only_flags_are_refused_by_name() {
    let s = serve(&[]);
    for (flags, named) in [
        (&["--eot-threshold", "0.8"][..], "--eot-threshold"),
        (&["--keyterm", "Acme"][..], "--keyterm"),
        (&["--no-force-end-turn"][..], "--no-force-end-turn"),
        (&["--sample-rate", "8000"][..], "--sample-rate"),
        (&["--chunk-ms", "20"][..], "--chunk-ms"),
        (&["--model", "flux-general-en"][..], "--model"),
    ] {
        let out = run(fireworks(&s, V1, KEY, flags), None);
        assert_eq!(code(&out), 2, "{flags:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(named), "{flags:?}: {}", stderr(&out));
    }
    for flag in [
        ["--language", "en"],
        ["--prompt", "Um"],
        ["--temperature", "0.1"],
    ] {
        let mut c = file_cmd(&s, &fixture("two_cities.wav"), &flag);
        c.env("DEEPGRAM_API_KEY", KEY);
        let out = run(c, None);
        assert_eq!(code(&out), 2, "{flag:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(flag[0]), "{flag:?}: {}", stderr(&out));
    }
    assert!(
        s.log_kind("handshake").is_empty(),
        "nothing was refused by a connection"
    );
}

#[test]
fn the_virtual_microphone_gives_the_same_turns_as_the_deepgram_dialect() {
    use crate::alsa::{Feed, Format, use_devices};
    use crate::common::read_wav_mono;
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("mic.raw");
    std::fs::write(&raw, []).unwrap();
    let mut devices = flux();
    use_devices(&mut devices, "mic.conf", &raw);
    devices.args(["devices", "--jsonl"]);
    let listed = run(devices, None);
    assert_eq!(code(&listed), 0, "{}", stderr(&listed));
    let format = stdout(&listed)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|d| d["id"] == "alsa:flux_mic")
        .map(|d| Format::from_json(&d["default_config"]))
        .expect("the virtual microphone is listed");
    let (mono, rate) = read_wav_mono(&fixture("beckett.wav"));
    Feed::write(&raw, &mono, rate, &format, 1.0);
    let script = dir.path().join("script.txt");
    std::fs::write(
        &script,
        "first turn\nsecond turn\nthird turn\nfourth turn\n",
    )
    .unwrap();
    let s = Serve::start(&["--api-key", KEY, "--script", script.to_str().unwrap()]);
    let listen = |provider: &str, url: String, key_env: &str| {
        let mut c = flux();
        use_devices(&mut c, "mic.conf", &raw);
        c.env(key_env, KEY)
            .args([
                "listen",
                "--mic",
                "--device",
                "Microphone A (raw",
                "--duration",
                "10.5",
            ])
            .args(["--provider", provider, "--url", &url, "--text"]);
        let out = run(c, None);
        assert_eq!(code(&out), 0, "{provider}: {}", stderr(&out));
        lines(&out)
    };
    let fw = listen("fireworks", format!("{}{V1}", s.url), "FIREWORKS_API_KEY");
    let dg = listen("deepgram", s.url.clone(), "DEEPGRAM_API_KEY");
    assert!(fw.len() >= 2, "{fw:?}");
    assert_eq!(fw, dg);
}

#[test]
fn captions_take_fireworks_word_times() {
    let s = serve(&[]);
    let fw = run(fireworks(&s, V1, KEY, &["--format", "srt"]), None);
    assert_eq!(code(&fw), 0, "{}", stderr(&fw));
    let mut dg = file_cmd(&s, &fixture("two_cities.wav"), &["--format", "srt"]);
    dg.env("DEEPGRAM_API_KEY", KEY);
    let dg = run(dg, None);
    assert_eq!(code(&dg), 0, "{}", stderr(&dg));
    // flux serve gives both dialects the same word times: the captions are the same.
    assert!(stdout(&fw).contains(" --> "), "{}", stdout(&fw));
    assert_eq!(stdout(&fw), stdout(&dg));
}

#[tokio::test]
async fn the_emulator_answers_clear_and_trace_and_checks_frame_sizes() {
    use crate::serve_support::{Incoming, connect};
    let s = serve(&[]);
    let path = format!("{V2}?response_format=verbose_json&timestamp_granularities=word,segment");
    let mut c = connect(&s.url, &path, &[("authorization", KEY)]).await;
    // No greeting: the first thing said is the answer to the clear.
    c.text(r#"{"event_id":"e1","object":"stt.state.clear","reset_id":"r1"}"#)
        .await;
    let cleared = c.json().await;
    assert_eq!(
        (&cleared["object"], &cleared["reset_id"]),
        (&Value::from("stt.state.cleared"), &Value::from("r1"))
    );
    // 2.96 s of speech (the first turn runs 1.2 s to 4.4 s), in 80 ms frames, then the trace.
    let pcm = fixture_at("two_cities.wav", 16000);
    c.audio_frames(&pcm[..2560 * 37], 2560).await;
    c.text(r#"{"event_id":"e2","object":"stt.input.trace","trace_id":"t1"}"#)
        .await;
    let mut last = Value::Null;
    loop {
        let v = c.json().await;
        if v["object"] == "stt.output.trace" {
            assert_eq!(v["trace_id"], "t1");
            break;
        }
        assert!(v["segments"].is_array(), "{v}");
        last = v;
    }
    // What was heard before the trace is final when it is answered, ids are strings on v2.
    let segment = &last["segments"][0];
    assert!(segment["id"].is_string(), "{last}");
    let words = segment["words"].as_array().unwrap();
    assert!(
        !words.is_empty() && words.iter().all(|w| w["is_final"] == true),
        "{last}"
    );
    // A 20 ms frame is outside 50–400 ms: an error, then a close with 1008.
    c.audio(&[0u8; 640]).await;
    let (rest, end) = c.rest().await;
    assert!(
        rest.iter()
            .any(|v| v["error"]["code"] == "invalid_audio_frame"),
        "{rest:?}"
    );
    assert!(matches!(end, Incoming::Close(Some((1008, _)))), "{end:?}");
}
