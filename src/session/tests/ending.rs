//! The Configure queue and the end of a stream, with and without ForceEndTurn, and a server
//! that closes with a turn open.

use super::*;

#[tokio::test(start_paused = true)]
async fn configures_go_one_at_a_time_and_are_answered_before_close() {
    let (ctl, controls) = mpsc::channel(8);
    let threshold = |x: f64| {
        Control::Configure(Configure {
            thresholds: Some(crate::protocol::Thresholds {
                eot_threshold: Some(x),
                ..Default::default()
            }),
            ..Default::default()
        })
    };
    ctl.try_send(threshold(0.6)).unwrap();
    ctl.try_send(threshold(0.8)).unwrap();
    let (outcome, _) = session(
        deepgram_opts(),
        finished_feed(1.0),
        controls,
        |mut server| async move {
            let mut peer = server.accept(&[]).await.unwrap();
            peer.send_text(CONNECTED);
            let first = peer.next_text().await.unwrap();
            assert!(first.contains("0.6"), "{first}");
            // Nothing else but audio while the first is unanswered.
            let (_, texts) = read_frames(&mut peer, 5).await;
            assert!(texts.is_empty(), "{texts:?}");
            peer.send_text(r#"{"type":"ConfigureSuccess","thresholds":{"eot_threshold":0.6}}"#);
            let second = peer.next_text().await.unwrap();
            assert!(second.contains("0.8"), "{second}");
            // The input ends while the second is unanswered: ForceEndTurn may go, CloseStream
            // must wait for the answer.
            let force = peer.next_text().await.unwrap();
            assert!(force.contains("ForceEndTurn"), "{force}");
            peer.send_text(&turn("EndOfTurn", 0, 0.0, 1.0, "x"));
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert!(
                peer.drain()
                    .iter()
                    .all(|s| !matches!(s, Seen::Message(Message::Text(_)))),
                "CloseStream went before the Configure was answered"
            );
            peer.send_text(r#"{"type":"ConfigureSuccess","thresholds":{"eot_threshold":0.8}}"#);
            let close = peer.next_text().await.unwrap();
            assert!(close.contains("CloseStream"), "{close}");
            peer.close(None, "");
        },
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
}

#[tokio::test(start_paused = true)]
async fn the_end_with_force_end_turn_finalizes_the_last_turn_and_measures_it() {
    let (outcome, sink) = session(
        deepgram_opts(),
        finished_feed(1.0),
        no_controls(),
        |mut server| async move {
            // No request id header: the summary takes the one `Connected` carries.
            let mut peer = server.accept(&[]).await.unwrap();
            peer.send_text(CONNECTED);
            peer.send_text(&turn("StartOfTurn", 0, 0.0, 0.4, "last"));
            read_frames(&mut peer, 16).await;
            let force = peer.next_text().await.unwrap();
            assert!(force.contains("ForceEndTurn"));
            tokio::time::sleep(Duration::from_millis(150)).await;
            peer.send_text(&turn("EndOfTurn", 0, 0.0, 1.0, "last words"));
            let close = peer.next_text().await.unwrap();
            assert!(close.contains("CloseStream"));
            peer.close(None, "");
        },
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.request_id.as_deref(), Some("r-connected"));
    assert_eq!(
        (outcome.totals.turns, outcome.totals.unconfirmed_turns),
        (1, 0)
    );
    let client = sink.client();
    assert!(client.iter().any(|c| matches!(c,
        ClientEvent::AudioFinished { reason, .. } if reason == "end_of_input")));
    // The frame holding 1.0 s is the last one; the answer came 150 ms after it went.
    let latency = client.iter().find_map(|c| match c {
        ClientEvent::EotLatency(l) => Some(l.clone()),
        _ => None,
    });
    assert_eq!(
        latency,
        Some(TurnLatency {
            turn_index: 0,
            audio_window_end: 1.0,
            latency_ms: 150.0
        })
    );
}

#[tokio::test(start_paused = true)]
async fn the_end_without_force_end_turn_sends_full_frames_of_silence() {
    // 1.05 s: the last input frame is short (0.05 s of a 0.0625 s frame).
    let (outcome, sink) = session(
        cloudflare_opts(),
        finished_feed(1.05),
        no_controls(),
        |mut server| async move {
            let mut peer = server.accept(&[]).await.unwrap();
            let mut sizes = Vec::new();
            loop {
                match peer.recv().await.unwrap() {
                    Seen::Message(Message::Binary(b)) => {
                        sizes.push(b.len());
                        if sizes.len() == 3 {
                            peer.send_text(&turn("StartOfTurn", 0, 0.0, 0.2, "hi"));
                        }
                        // Well into the silence: the turn ends by itself.
                        if sizes.len() == 20 {
                            peer.send_text(&turn("EndOfTurn", 0, 0.0, 1.05, "hi there"));
                        }
                    }
                    Seen::Message(Message::Text(t)) => {
                        assert!(t.contains("CloseStream"), "{t}");
                        peer.close(None, "");
                        break;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert!(sizes.iter().all(|&n| n == FRAME_BYTES), "{sizes:?}");
        },
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.totals.turns, 1);
    assert!((outcome.totals.input_seconds - 1.05).abs() < 1e-9);
    assert!(!sink.server_raw().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_server_that_closes_with_a_turn_open_leaves_it_unconfirmed() {
    let (outcome, sink) = session(
        deepgram_opts(),
        finished_feed(1.0),
        no_controls(),
        |mut server| async move {
            let mut peer = server.accept(&[]).await.unwrap();
            peer.send_text(CONNECTED);
            peer.send_text(&turn("StartOfTurn", 0, 0.0, 0.5, "open words"));
            finish(
                &mut peer,
                r#"{"type":"Warning","code":"W","description":"x"}"#,
            )
            .await;
        },
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.totals.unconfirmed_turns, 1);
    assert!(sink.client().iter().any(|c| matches!(c,
        ClientEvent::UnconfirmedTurn { transcript, reason, .. }
            if transcript == "open words" && reason == "stream_closed")));

    // Without reconnects, a close mid-stream loses the connection with the turn open.
    let mut opts = deepgram_opts();
    opts.max_reconnects = 0;
    let (outcome, sink) = session(
        opts,
        finished_feed(2.0),
        no_controls(),
        |mut server| async move {
            let mut peer = server.accept(&[]).await.unwrap();
            peer.send_text(CONNECTED);
            peer.send_text(&turn("StartOfTurn", 0, 0.0, 0.5, "cut off"));
            read_frames(&mut peer, 5).await;
            peer.close(Some(1011), "restart");
        },
    )
    .await;
    assert_eq!(outcome.error.unwrap().exit_code(), 4);
    assert!(sink.client().iter().any(|c| matches!(c,
        ClientEvent::UnconfirmedTurn { reason, .. } if reason == "connection_lost")));
}

#[tokio::test(start_paused = true)]
async fn a_close_with_an_error_after_close_stream_replays_the_open_turn_on_a_new_connection() {
    // SageMaker's cap (or a failing container) can end a stream after CloseStream went out
    // while a turn is still open: the turn is owed, so flux reconnects and replays it instead
    // of reporting it unconfirmed.
    let (outcome, sink) = session(
        deepgram_opts(),
        finished_feed(1.0),
        no_controls(),
        |mut server| async move {
            let mut peer = server.accept(&[]).await.unwrap();
            peer.send_text(CONNECTED);
            peer.send_text(&turn("StartOfTurn", 0, 0.0, 0.5, "open words"));
            loop {
                match peer.recv().await.expect("the client left") {
                    Seen::Message(Message::Binary(_)) => {}
                    Seen::Message(Message::Text(t)) if t.contains("ForceEndTurn") => {
                        peer.send_text(r#"{"type":"Warning","code":"W","description":"x"}"#)
                    }
                    Seen::Message(Message::Text(t)) if t.contains("CloseStream") => {
                        peer.close(Some(1008), "the stream reached its maximum duration");
                        break;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            let mut peer = server.accept(&[]).await.unwrap();
            peer.send_text(CONNECTED);
            let (replayed, _) = read_frames(&mut peer, 16).await;
            assert_eq!(
                replayed,
                (0..16).collect::<Vec<u16>>(),
                "the open turn again"
            );
            peer.send_text(&turn("EndOfTurn", 0, 0.0, 1.0, "open words done"));
            finish(
                &mut peer,
                r#"{"type":"Warning","code":"FORCE_END_TURN_NO_ACTIVE_TURN","description":"x"}"#,
            )
            .await;
        },
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.totals.reconnects, 1);
    assert_eq!(
        (outcome.totals.turns, outcome.totals.unconfirmed_turns),
        (1, 0)
    );
    assert!(
        sink.server_raw()
            .iter()
            .any(|r| r["event"] == "EndOfTurn" && r["transcript"] == "open words done")
    );

    // With nothing owed, the same close is still an error: it says the stream did not end
    // as asked.
    let (outcome, _) = session(
        deepgram_opts(),
        finished_feed(1.0),
        no_controls(),
        |mut server| async move {
            let mut peer = server.accept(&[]).await.unwrap();
            peer.send_text(CONNECTED);
            loop {
                match peer.recv().await.expect("the client left") {
                    Seen::Message(Message::Binary(_)) => {}
                    Seen::Message(Message::Text(t)) if t.contains("ForceEndTurn") => {
                        peer.send_text(&turn("EndOfTurn", 0, 0.0, 1.0, "all of it"))
                    }
                    Seen::Message(Message::Text(t)) if t.contains("CloseStream") => {
                        peer.close(Some(1011), "gone");
                        break;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        },
    )
    .await;
    assert_eq!(outcome.error.unwrap().exit_code(), 4);
}
