//! Connections: a drop mid-turn, a stall, a busy server, finishing while connecting, reading
//! ahead, and an input without audio.

use super::*;

#[tokio::test(start_paused = true)]
async fn a_drop_mid_turn_replays_the_open_turn_and_shifts_the_timeline() {
    let (outcome, sink) = session(
        deepgram_opts(),
        finished_feed(3.0),
        no_controls(),
        |mut server| async move {
            let mut peer = server.accept(&[("dg-request-id", "r1")]).await.unwrap();
            peer.send_text(CONNECTED);
            read_frames(&mut peer, 12).await;
            peer.send_text(&turn("EndOfTurn", 0, 0.0, 0.75, "first"));
            peer.send_text(&turn("StartOfTurn", 1, 0.75, 1.0, "second"));
            read_frames(&mut peer, 8).await;
            // 20 frames (1.25 s) sent; the open turn began at 0.75 s.
            peer.reset();
            let mut peer = server.accept(&[("dg-request-id", "r2")]).await.unwrap();
            peer.send_text(CONNECTED);
            let (replayed, _) = read_frames(&mut peer, 8).await;
            assert_eq!(
                replayed,
                (12..20).collect::<Vec<u16>>(),
                "the open turn's audio"
            );
            // The new connection counts from 0: 0.5 s into it is 1.25 s of the stream.
            peer.send_text(&turn("EndOfTurn", 0, 0.0, 0.5, "second turn"));
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
    assert_eq!(outcome.totals.turns, 2);
    assert_eq!(outcome.request_id.as_deref(), Some("r1"));
    // Every frame counted once, replays excluded.
    assert_eq!(outcome.totals.frames_sent, 48);
    let reconnected = sink.client().into_iter().find_map(|c| match c {
        ClientEvent::Reconnected {
            resume_from,
            replayed_seconds,
            turn_offset,
            ..
        } => Some((resume_from, replayed_seconds, turn_offset)),
        _ => None,
    });
    assert_eq!(reconnected, Some((0.75, 0.5, 1)));
    let last_eot = sink
        .server_raw()
        .into_iter()
        .rev()
        .find(|r| r["event"] == "EndOfTurn")
        .unwrap();
    assert_eq!(last_eot["turn_index"], 1);
    assert_eq!(last_eot["audio_window_start"], 0.75);
    assert_eq!(last_eot["audio_window_end"], 1.25);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_server_is_left_for_a_new_connection() {
    let (outcome, sink) = session(
        deepgram_opts(),
        finished_feed(4.0),
        no_controls(),
        |mut server| async move {
            let mut peer = server.accept(&[]).await.unwrap();
            peer.send_text(CONNECTED);
            // Audio flows; the server says nothing more. The client gives up after 2 s.
            let mut frames = 0;
            while let Some(Seen::Message(Message::Binary(_))) = peer.recv().await {
                frames += 1;
            }
            assert!(
                (31..=34).contains(&frames),
                "{frames} frames before the stall"
            );
            let mut peer = server.accept(&[]).await.unwrap();
            peer.send_text(CONNECTED);
            // No turn was heard: everything sent is sent again, from the start.
            let (first, _) = read_frames(&mut peer, 1).await;
            assert_eq!(first, [0]);
            finish(&mut peer, &turn("EndOfTurn", 0, 0.0, 1.0, "done")).await;
        },
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.totals.frames_sent, 64);
    let reason = sink.client().into_iter().find_map(|c| match c {
        ClientEvent::Reconnecting { reason, .. } => Some(reason),
        _ => None,
    });
    assert!(reason.unwrap().contains("sent nothing for 2.0s"));
}

#[tokio::test(start_paused = true)]
async fn a_planned_move_to_the_next_stream_is_immediate_and_outside_the_budget() {
    // SageMaker's rotation before its 30-minute cap: even with reconnecting disabled, the
    // session opens the next stream at once (no backoff) and replays the open turn there.
    let mut opts = deepgram_opts();
    opts.max_reconnects = 0;
    let (outcome, sink) = session(
        opts,
        finished_feed(2.0),
        no_controls(),
        |mut server| async move {
            let mut peer = server.accept(&[]).await.unwrap();
            peer.send_text(CONNECTED);
            read_frames(&mut peer, 12).await;
            peer.send_text(&turn("EndOfTurn", 0, 0.0, 0.75, "first"));
            peer.send_text(&turn("StartOfTurn", 1, 0.75, 1.0, "second"));
            read_frames(&mut peer, 4).await;
            let moved = Instant::now();
            peer.move_on("moving to the next stream after 4s, before the cap");
            let mut peer = server.accept(&[]).await.unwrap();
            assert_eq!(Instant::now(), moved, "no backoff before the next stream");
            peer.send_text(CONNECTED);
            let (replayed, _) = read_frames(&mut peer, 4).await;
            assert_eq!(
                replayed,
                (12..16).collect::<Vec<u16>>(),
                "the open turn's audio"
            );
            finish(&mut peer, &turn("EndOfTurn", 0, 0.0, 1.25, "second turn")).await;
        },
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.totals.reconnects, 1);
    let moves: Vec<(u32, u64, bool)> = sink
        .client()
        .into_iter()
        .filter_map(|c| match c {
            ClientEvent::Reconnecting {
                attempt,
                delay_ms,
                planned,
                ..
            } => Some((attempt, delay_ms, planned)),
            _ => None,
        })
        .collect();
    assert_eq!(moves, [(0, 0, true)]);
}

#[tokio::test(start_paused = true)]
async fn a_busy_server_is_retried_with_backoff_then_given_up_on() {
    let (outcome, sink) = session(
        deepgram_opts(),
        finished_feed(1.0),
        no_controls(),
        |mut server| async move {
            let mut times = Vec::new();
            for _ in 0..2 {
                let a = server.attempt().await.unwrap();
                times.push(Instant::now());
                a.refuse(
                    429,
                    &[],
                    r#"{"err_code":"TOO_MANY_REQUESTS","err_msg":"busy"}"#,
                );
            }
            let a = server.attempt().await.unwrap();
            times.push(Instant::now());
            let mut peer = a.accept(&[]);
            peer.send_text(CONNECTED);
            finish(&mut peer, &turn("EndOfTurn", 0, 0.0, 1.0, "ok")).await;
            // Backoff: 250 ms then 500 ms, each with up to half taken off as jitter.
            let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
            assert!(gaps[0] >= Duration::from_millis(125) && gaps[0] <= Duration::from_millis(250));
            assert!(gaps[1] >= Duration::from_millis(250) && gaps[1] <= Duration::from_millis(500));
        },
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let attempts: Vec<u32> = sink
        .client()
        .into_iter()
        .filter_map(|c| match c {
            ClientEvent::Reconnecting { attempt, .. } => Some(attempt),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, [1, 2]);

    // With no retries allowed, a 429 is a connection failure (exit 4) naming the refusal.
    let mut opts = deepgram_opts();
    opts.max_reconnects = 0;
    let (outcome, _) = session(
        opts,
        finished_feed(1.0),
        no_controls(),
        |mut server| async move {
            server.attempt().await.unwrap().refuse(429, &[], "");
        },
    )
    .await;
    let e = outcome.error.unwrap();
    assert_eq!(e.exit_code(), 4);
    assert!(e.to_string().contains("429"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn finishing_while_connecting_drops_the_queued_audio_even_after_the_input_ended() {
    // A live source that delivered 3 s and ended while the server was slow to greet.
    let mut opts = deepgram_opts();
    opts.live_source = true;
    let (ctl, controls) = mpsc::channel(8);
    let (outcome, sink) = session(
        opts,
        finished_feed(3.0),
        controls,
        |mut server| async move {
            let mut peer = server.accept(&[]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            ctl.send(Control::Finish).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            peer.send_text(CONNECTED);
            let frames = finish(
                &mut peer,
                r#"{"type":"Warning","code":"W","description":"x"}"#,
            )
            .await;
            assert_eq!(frames, 0, "audio queued before the request was sent anyway");
        },
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert!(sink.client().iter().any(|c| matches!(c,
        ClientEvent::AudioFinished { reason, .. } if reason == "interrupted")));
}

#[tokio::test(start_paused = true)]
async fn a_file_is_read_only_a_little_ahead_while_connecting() {
    // 40 s of file, offered as fast as the session takes it.
    let (feed_tx, feed) = mpsc::channel(2);
    let taken = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = taken.clone();
    tokio::spawn(async move {
        for i in 0..500u64 {
            let frames = vec![audio_frame(i, FRAME_BYTES)];
            let ready = std::time::Instant::now();
            if feed_tx.send(Feed::Frames { frames, ready }).await.is_err() {
                return;
            }
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let _ = feed_tx
            .send(Feed::End {
                error: None,
                note: None,
            })
            .await;
    });
    let (ctl, controls) = mpsc::channel(8);
    let (outcome, _) = session(deepgram_opts(), feed, controls, |mut server| async move {
        let mut peer = server.accept(&[]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let read = taken.load(std::sync::atomic::Ordering::SeqCst);
        // A second of read-ahead (16 frames), plus what the feed channel holds.
        assert!(read <= 20, "{read} frames read while connecting");
        ctl.send(Control::Finish).await.unwrap();
        peer.send_text(CONNECTED);
        let frames = finish(
            &mut peer,
            r#"{"type":"Warning","code":"W","description":"x"}"#,
        )
        .await;
        assert_eq!(frames, 0);
    })
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
}

#[tokio::test(start_paused = true)]
async fn an_empty_input_never_connects() {
    let (tx, feed) = mpsc::channel(1);
    tx.try_send(Feed::End {
        error: Some(crate::audio::AudioError::Empty {
            input: "stdin".into(),
        }),
        note: None,
    })
    .unwrap();
    let (outcome, sink) = session(
        deepgram_opts(),
        feed,
        no_controls(),
        |mut server| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert!(server.try_attempt().is_none(), "a connection was opened");
            assert_eq!(server.connections, 0);
        },
    )
    .await;
    assert!(outcome.input_error.is_some());
    assert!(outcome.error.is_none());
    assert!(sink.events().is_empty());
}

/// Events' summaries, and whether they came inside a batch.
type Batch = (Vec<String>, bool);

/// A sink that records which events came in a batch and which on their own.
#[derive(Clone, Default)]
struct Batches {
    seen: Arc<Mutex<Vec<Batch>>>,
    open: Option<Vec<String>>,
}

impl Sink for Batches {
    fn event(&mut self, event: &Event) -> std::io::Result<()> {
        let name = match event {
            Event::Server(r) => match &r.message {
                crate::protocol::ServerMessage::TurnInfo(t) => t.transcript.clone(),
                other => other.type_name().to_string(),
            },
            Event::Client(c) => format!("{c:?}")
                .split([' ', '(', '{'])
                .next()
                .unwrap_or("")
                .to_string(),
        };
        match &mut self.open {
            Some(batch) => batch.push(name),
            None => self.seen.lock().unwrap().push((vec![name], false)),
        }
        Ok(())
    }

    fn begin_batch(&mut self) {
        assert!(self.open.is_none(), "batches do not nest");
        self.open = Some(Vec::new());
    }

    fn end_batch(&mut self) -> std::io::Result<()> {
        let batch = self.open.take().expect("a batch was begun");
        if !batch.is_empty() {
            self.seen.lock().unwrap().push((batch, true));
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn messages_that_arrived_together_reach_the_sink_as_one_batch() {
    let (transport, mut server) = memory::pipe();
    let sink = Batches::default();
    let mut s = sink.clone();
    let opts = deepgram_opts();
    let (outcome, ()) = tokio::join!(
        run_over(
            Arc::new(transport),
            &opts,
            finished_feed(2.0),
            &mut s,
            no_controls(),
            None
        ),
        async move {
            let mut peer = server.accept(&[]).await.unwrap();
            peer.send_text(CONNECTED);
            read_frames(&mut peer, 8).await;
            // Four messages at once, as one socket read delivers them at --fast.
            for (i, text) in ["a", "a b", "a b c", "a b c d"].iter().enumerate() {
                peer.send_text(&turn("Update", 0, 0.0, 0.25 * (i + 1) as f64, text));
            }
            finish(&mut peer, &turn("EndOfTurn", 0, 0.0, 2.0, "done")).await;
        }
    );
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let seen = sink.seen.lock().unwrap().clone();
    let updates = ["a", "a b", "a b c", "a b c d"];
    assert!(
        seen.contains(&(updates.iter().map(|s| s.to_string()).collect(), true)),
        "the four updates in one batch, in order: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(events, batched)| !batched && events[0] == "Connected"),
        "the client's own events go on their own: {seen:?}"
    );
    assert!(sink.open.is_none());
}
