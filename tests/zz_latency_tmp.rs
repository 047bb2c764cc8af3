use flux::audio::condition::Conditioner;
use flux::audio::mic::ring::{Shared, ring};
use flux::audio::Block;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn latency() {
    let shared = Shared::new(2, u64::MAX);
    let (mut w, mut r) = ring(shared.clone(), 96000);
    let pushes: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let p2 = pushes.clone();
    let prod = std::thread::spawn(move || {
        let period = vec![0.1f32; 480 * 2]; // 10 ms at 48k stereo
        let mut frames = 0u64;
        let start = Instant::now();
        for i in 0..300u32 {
            let due = start + Duration::from_millis(10 * u64::from(i));
            while Instant::now() < due { std::thread::sleep(Duration::from_micros(200)); }
            w.push(&period);
            frames += 480;
            p2.lock().unwrap().push((frames, Instant::now()));
        }
    });
    let _ = shared.reader.set(std::thread::current());
    let mut c = Conditioner::new(48000, 2, 16000, 80).unwrap();
    let mut got = 0u64;
    let mut handoff = Vec::new();
    let mut frame_lat = Vec::new();
    let mut in_frames = 0u64;
    while got < 300 * 480 {
        let mut v = Vec::new();
        let n = r.pop_into(&mut v, 4096) as u64;
        if n == 0 { std::thread::park_timeout(Duration::from_millis(20)); continue; }
        let now = Instant::now();
        got += n;
        in_frames += n;
        if let Some(&(_, t)) = pushes.lock().unwrap().iter().find(|(f, _)| *f == got) { handoff.push(now - t); }
        let b = Block { samples: v, channels: 2, sample_rate: 48000 };
        let mut emitted = Vec::new();
        c.push(&b, &mut |f| emitted.push(f)).unwrap();
        let done = Instant::now();
        for f in emitted {
            // input frame that completes this output frame (resampler group delay compensated)
            let need = (f.start_sample + f.samples() as u64) * 3;
            if let Some(&(_, t)) = pushes.lock().unwrap().iter().find(|(fr, _)| *fr >= need) { frame_lat.push(done - t); }
        }
    }
    prod.join().unwrap();
    let stats = |v: &mut Vec<Duration>| { v.sort(); (v[v.len()/2], v[v.len()*99/100], v[v.len()-1]) };
    eprintln!("handoff push->pop (median, p99, max): {:?}", stats(&mut handoff));
    eprintln!("frame ready after its last input sample was pushed (median, p99, max): {:?}", stats(&mut frame_lat));
}
