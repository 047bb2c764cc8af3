
use builtin;
use str;

set edit:completion:arg-completer[flux] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'flux'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'flux'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand file 'Stream WAV files through Flux (each its own stream), paced like live audio by default'
            cand listen 'Stream live audio through Flux: a microphone (--mic) or raw PCM on stdin (--stdin)'
            cand replay 'Re-render a session recorded with --jsonl (text, captions or the live view), at its recorded pace or faster, without any server'
            cand devices 'List audio input devices (ids for `flux listen --mic --device`)'
            cand serve 'Run a local Flux-compatible server, for offline development and CI'
            cand completions 'Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout'
            cand man 'Print flux''s manual page (roff) on stdout, e.g. `flux man | man -l -`'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'flux;file'= {
            cand -j 'Stream at most N files at once, up to 256 (default: as many as there are files, at most 4). Each stream has its own audio thread and connection; with --split-channels N counts streams (one per channel), not files'
            cand --jobs 'Stream at most N files at once, up to 256 (default: as many as there are files, at most 4). Each stream has its own audio thread and connection; with --split-channels N counts streams (one per channel), not files'
            cand --save-audio 'Also write the audio exactly as sent (mono 16-bit PCM at --sample-rate, after conditioning) to this WAV file (one input file only)'
            cand --channel-labels 'Names for the sides, one per channel (or per --device), comma-separated (default ch0,ch1,...): letters, digits, `-`, `_` and `.`'
            cand --expect-text 'Expect this transcript: the finished turns, joined, are compared word by word after normalization (case, punctuation, spacing; docs/guide.md#assertions)'
            cand --expect-file 'Expect the transcript in FILE (UTF-8; line breaks count as spaces). With --split-channels, LABEL=FILE checks one side (repeat it for each side)'
            cand --max-wer 'Word error rate allowed against --expect-text/--expect-file: word-level edits (substitutions + deletions + insertions) divided by the reference''s words. Default 0: every word must match after normalization'
            cand --expect-turns 'Expect exactly N turns (EndOfTurn, plus any turn left unconfirmed when the stream closed)'
            cand --max-eot-latency-ms 'Fail when an EndOfTurn arrives more than MS milliseconds after the end of its turn''s audio was sent (wall time, at real-time pace; not with --fast)'
            cand --pace 'Send audio FACTOR times faster than real time: 0.1 to 1000 (1 = real time, the default). Flux is built for live audio: its turn timers run on audio time, so results match real time, but Deepgram does not promise the same transcripts for bursts'
            cand --provider 'Where Flux runs: Deepgram (/v2/listen) or Cloudflare Workers AI (@cf/deepgram/flux)'
            cand --url 'Send to this server instead. Deepgram: a base URL such as a `flux serve` address (ws://127.0.0.1:8787), a regional host (wss://api.eu.deepgram.com) or self-hosted Deepgram; `/v2/listen` is appended unless the path already ends with it. Cloudflare: the whole endpoint, used as given (your Worker, the REST URL, or an AI Gateway URL)'
            cand --api-key-file 'Read the API key (Deepgram) or API token (Cloudflare) from this file instead of DEEPGRAM_API_KEY / CLOUDFLARE_API_TOKEN (keeps it out of `ps` and shell history)'
            cand --account-id 'Cloudflare account id (default: CLOUDFLARE_ACCOUNT_ID)'
            cand --gateway 'Cloudflare: go through this AI Gateway (sends the token as cf-aig-authorization)'
            cand --header 'Add a header to the WebSocket request, e.g. the auth your own Worker or proxy wants; repeatable. Values are never printed'
            cand --ca-cert 'Also trust the CA certificate(s) in this PEM file for wss:// (a private CA, a TLS proxy); repeatable. Mozilla''s roots stay trusted; certificates are always verified'
            cand --max-reconnects 'Reconnect at most N times after the connection drops, fails or stalls (the count resets after a minute of healthy audio); 0 never reconnects. The open turn''s audio is sent again, so no speech is lost'
            cand --stall-timeout 'Reconnect when audio is flowing but the server has sent nothing for SECONDS (0.5 to 3600)'
            cand --control 'Read control messages from FILE (a FIFO works) while streaming: one JSON object per line, as Flux''s own messages ({"type":"Configure",...}, {"type":"ForceEndTurn"}, {"type":"CloseStream"} to finish), with an optional "at": SECONDS of audio to delay it until then. See docs/control.md'
            cand --model 'Flux model: flux-general-en (the default), or flux-general-multi for multilingual audio. Deepgram only (Cloudflare serves flux-general-en)'
            cand --sample-rate 'Sample rate sent to Flux, in Hz: 8000, 16000, 24000, 44100 or 48000 (audio is resampled to it)'
            cand --chunk-ms 'Audio per WebSocket message, in milliseconds: 10 to 1000 (Deepgram recommends 80)'
            cand --eot-threshold 'End-of-turn confidence needed to end a turn (0.5 to 1.0; 1.0 leaves ends to --eot-timeout-ms). Server default 0.7'
            cand --eager-eot-threshold 'Confidence for EagerEndOfTurn events (0.3 to 0.9, at most --eot-threshold); enables EagerEndOfTurn and TurnResumed'
            cand --eot-timeout-ms 'End a turn after this much audio without speech, whatever the confidence (500 to 60000). Server default 5000'
            cand --keyterm 'Boost recognition of a term or phrase; repeat for several'
            cand --language-hint 'Expected language for flux-general-multi (en, es, fr, de, hi, ru, pt, ja, it, nl); repeat for several'
            cand --tag 'Usage-reporting label; repeat for several'
            cand --redact 'Redact numbers from transcripts; repeat for several kinds'
            cand --format 'What to print on stdout: `live` shows turns as they happen in the terminal (docs/live.md); `text` prints one line per finished turn; `jsonl` prints every event as one JSON object per line (docs/jsonl.md); `srt` and `vtt` print captions as turns finish (docs/captions.md). Default: live when stdout is a terminal, text otherwise'
            cand --color 'Colour in the live view and progress bar: auto (unless NO_COLOR is set and not empty, or TERM=dumb), always or never. Nothing else is ever coloured'
            cand --split-channels 'Stream each channel of the input on its own (picked, not mixed): one connection per channel, one timeline ordered by audio time, every line naming its side'
            cand --fast 'Send audio as fast as the connection takes it (for tests and batch jobs; same caveat as --pace)'
            cand --allow-insecure 'Allow plain ws:// to a host that is not loopback (the audio and API key travel unencrypted)'
            cand --no-force-end-turn 'The server has no ForceEndTurn (self-hosted Deepgram): end the stream by sending silence until the last turn ends instead. Implied for Cloudflare'
            cand --numerals 'Write numbers as digits ("25" rather than "twenty five")'
            cand --profanity-filter 'Mask profanity in transcripts'
            cand --mip-opt-out 'Opt out of Deepgram''s Model Improvement Program'
            cand --text 'Shorthand for --format text'
            cand --jsonl 'Shorthand for --format jsonl'
            cand -q 'Print no status or warnings on stderr (errors are still printed)'
            cand --quiet 'Print no status or warnings on stderr (errors are still printed)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'flux;listen'= {
            cand --device 'Input device for --mic: an id from `flux devices`, or a unique part of an id or description (case-insensitive). Give it twice (or more) for one side per device (e.g. a headset and a monitor of what the computer plays), named by --channel-labels'
            cand --duration 'Stop after this many seconds of audio (more than 0, at most 86400), counted in audio frames from the device or stdin, not wall-clock time: caps a live capture'
            cand --save-audio 'Also write the audio exactly as sent (mono 16-bit PCM at --sample-rate, after conditioning) to this WAV file; `flux file FILE.wav` replays the session'
            cand --rate 'Sample rate of the PCM on stdin, in Hz: 1000 to 384000 (required with --stdin)'
            cand --channels 'Interleaved channels in the PCM on stdin; they are mixed down to mono'
            cand --sample-format 'Sample format of the PCM on stdin'
            cand --channel-labels 'Names for the sides, one per channel (or per --device), comma-separated (default ch0,ch1,...): letters, digits, `-`, `_` and `.`'
            cand --pace 'Send audio FACTOR times faster than real time: 0.1 to 1000 (1 = real time, the default). Flux is built for live audio: its turn timers run on audio time, so results match real time, but Deepgram does not promise the same transcripts for bursts'
            cand --provider 'Where Flux runs: Deepgram (/v2/listen) or Cloudflare Workers AI (@cf/deepgram/flux)'
            cand --url 'Send to this server instead. Deepgram: a base URL such as a `flux serve` address (ws://127.0.0.1:8787), a regional host (wss://api.eu.deepgram.com) or self-hosted Deepgram; `/v2/listen` is appended unless the path already ends with it. Cloudflare: the whole endpoint, used as given (your Worker, the REST URL, or an AI Gateway URL)'
            cand --api-key-file 'Read the API key (Deepgram) or API token (Cloudflare) from this file instead of DEEPGRAM_API_KEY / CLOUDFLARE_API_TOKEN (keeps it out of `ps` and shell history)'
            cand --account-id 'Cloudflare account id (default: CLOUDFLARE_ACCOUNT_ID)'
            cand --gateway 'Cloudflare: go through this AI Gateway (sends the token as cf-aig-authorization)'
            cand --header 'Add a header to the WebSocket request, e.g. the auth your own Worker or proxy wants; repeatable. Values are never printed'
            cand --ca-cert 'Also trust the CA certificate(s) in this PEM file for wss:// (a private CA, a TLS proxy); repeatable. Mozilla''s roots stay trusted; certificates are always verified'
            cand --max-reconnects 'Reconnect at most N times after the connection drops, fails or stalls (the count resets after a minute of healthy audio); 0 never reconnects. The open turn''s audio is sent again, so no speech is lost'
            cand --stall-timeout 'Reconnect when audio is flowing but the server has sent nothing for SECONDS (0.5 to 3600)'
            cand --control 'Read control messages from FILE (a FIFO works) while streaming: one JSON object per line, as Flux''s own messages ({"type":"Configure",...}, {"type":"ForceEndTurn"}, {"type":"CloseStream"} to finish), with an optional "at": SECONDS of audio to delay it until then. See docs/control.md'
            cand --model 'Flux model: flux-general-en (the default), or flux-general-multi for multilingual audio. Deepgram only (Cloudflare serves flux-general-en)'
            cand --sample-rate 'Sample rate sent to Flux, in Hz: 8000, 16000, 24000, 44100 or 48000 (audio is resampled to it)'
            cand --chunk-ms 'Audio per WebSocket message, in milliseconds: 10 to 1000 (Deepgram recommends 80)'
            cand --eot-threshold 'End-of-turn confidence needed to end a turn (0.5 to 1.0; 1.0 leaves ends to --eot-timeout-ms). Server default 0.7'
            cand --eager-eot-threshold 'Confidence for EagerEndOfTurn events (0.3 to 0.9, at most --eot-threshold); enables EagerEndOfTurn and TurnResumed'
            cand --eot-timeout-ms 'End a turn after this much audio without speech, whatever the confidence (500 to 60000). Server default 5000'
            cand --keyterm 'Boost recognition of a term or phrase; repeat for several'
            cand --language-hint 'Expected language for flux-general-multi (en, es, fr, de, hi, ru, pt, ja, it, nl); repeat for several'
            cand --tag 'Usage-reporting label; repeat for several'
            cand --redact 'Redact numbers from transcripts; repeat for several kinds'
            cand --format 'What to print on stdout: `live` shows turns as they happen in the terminal (docs/live.md); `text` prints one line per finished turn; `jsonl` prints every event as one JSON object per line (docs/jsonl.md); `srt` and `vtt` print captions as turns finish (docs/captions.md). Default: live when stdout is a terminal, text otherwise'
            cand --color 'Colour in the live view and progress bar: auto (unless NO_COLOR is set and not empty, or TERM=dumb), always or never. Nothing else is ever coloured'
            cand --stdin 'Read raw PCM from stdin until end of input (e.g. from sox, ffmpeg or arecord)'
            cand --mic 'Capture from a microphone (the default input device, or --device) until Ctrl-C or --duration. Ctrl-C once finishes the last turn and exits 0; twice exits at once'
            cand --split-channels 'Stream each channel of the input on its own (picked, not mixed): one connection per channel, one timeline ordered by audio time, every line naming its side'
            cand --fast 'Send audio as fast as the connection takes it (for tests and batch jobs; same caveat as --pace)'
            cand --allow-insecure 'Allow plain ws:// to a host that is not loopback (the audio and API key travel unencrypted)'
            cand --no-force-end-turn 'The server has no ForceEndTurn (self-hosted Deepgram): end the stream by sending silence until the last turn ends instead. Implied for Cloudflare'
            cand --numerals 'Write numbers as digits ("25" rather than "twenty five")'
            cand --profanity-filter 'Mask profanity in transcripts'
            cand --mip-opt-out 'Opt out of Deepgram''s Model Improvement Program'
            cand --text 'Shorthand for --format text'
            cand --jsonl 'Shorthand for --format jsonl'
            cand -q 'Print no status or warnings on stderr (errors are still printed)'
            cand --quiet 'Print no status or warnings on stderr (errors are still printed)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'flux;replay'= {
            cand --pace 'Replay FACTOR times faster than recorded (0.1 to 1000; default 1, the recorded pace)'
            cand --format 'What to print on stdout: `live` shows turns as they happen in the terminal (docs/live.md); `text` prints one line per finished turn; `jsonl` prints every event as one JSON object per line (docs/jsonl.md); `srt` and `vtt` print captions as turns finish (docs/captions.md). Default: live when stdout is a terminal, text otherwise'
            cand --color 'Colour in the live view and progress bar: auto (unless NO_COLOR is set and not empty, or TERM=dumb), always or never. Nothing else is ever coloured'
            cand --fast 'Render everything at once'
            cand --text 'Shorthand for --format text'
            cand --jsonl 'Shorthand for --format jsonl'
            cand -q 'Print no status or warnings on stderr (errors are still printed)'
            cand --quiet 'Print no status or warnings on stderr (errors are still printed)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'flux;devices'= {
            cand --jsonl 'One JSON object per device: {id, description, default, channels, sample_rates, default_config: {sample_format, sample_rate, channels}}'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'flux;serve'= {
            cand --listen 'Address to listen on; port 0 picks a free port (the address is printed on stdout)'
            cand --api-key 'Require this API key (`Authorization: Token KEY`, or `Bearer KEY` on Cloudflare routes)'
            cand --script 'Transcript script: one line per turn, revealed word by word as the turn''s speech goes on'
            cand --replay 'Answer every connection with the server messages of a session recorded with `flux ... --jsonl`, each sent when the incoming audio reaches its time (docs/serve.md)'
            cand --log 'Append one JSON line per thing received (handshakes, audio frames, control messages, closes) to FILE'
            cand --fault 'Inject a fault, e.g. `drop:at=2.5,conn=1`, `reject:status=429`, `delay:ms=200`; repeatable (docs/serve.md lists them all)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'flux;completions'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'flux;man'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'flux;help'= {
            cand file 'Stream WAV files through Flux (each its own stream), paced like live audio by default'
            cand listen 'Stream live audio through Flux: a microphone (--mic) or raw PCM on stdin (--stdin)'
            cand replay 'Re-render a session recorded with --jsonl (text, captions or the live view), at its recorded pace or faster, without any server'
            cand devices 'List audio input devices (ids for `flux listen --mic --device`)'
            cand serve 'Run a local Flux-compatible server, for offline development and CI'
            cand completions 'Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout'
            cand man 'Print flux''s manual page (roff) on stdout, e.g. `flux man | man -l -`'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'flux;help;file'= {
        }
        &'flux;help;listen'= {
        }
        &'flux;help;replay'= {
        }
        &'flux;help;devices'= {
        }
        &'flux;help;serve'= {
        }
        &'flux;help;completions'= {
        }
        &'flux;help;man'= {
        }
        &'flux;help;help'= {
        }
    ]
    $completions[$command]
}
