# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_flux_global_optspecs
    string join \n config= profile= h/help V/version
end

function __fish_flux_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_flux_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_flux_using_subcommand
    set -l cmd (__fish_flux_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c flux -n "__fish_flux_needs_command" -l config -d 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md' -r -F
complete -c flux -n "__fish_flux_needs_command" -l profile -d 'Use the config file\'s [profile.NAME] on top of its [default] table' -r
complete -c flux -n "__fish_flux_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c flux -n "__fish_flux_needs_command" -s V -l version -d 'Print version'
complete -c flux -n "__fish_flux_needs_command" -f -a "file" -d 'Stream WAV files through Flux (each its own stream), paced like live audio by default'
complete -c flux -n "__fish_flux_needs_command" -f -a "listen" -d 'Stream live audio through Flux: a microphone (--mic) or raw PCM on stdin (--stdin)'
complete -c flux -n "__fish_flux_needs_command" -f -a "replay" -d 'Re-render a session recorded with --jsonl (text, captions or the live view), at its recorded pace or faster, without any server'
complete -c flux -n "__fish_flux_needs_command" -f -a "devices" -d 'List audio input devices (ids for `flux listen --mic --device`)'
complete -c flux -n "__fish_flux_needs_command" -f -a "serve" -d 'Run a local Flux-compatible server, for offline development and CI'
complete -c flux -n "__fish_flux_needs_command" -f -a "load" -d 'Load-test a Flux deployment: N concurrent real-time streams looping WAV recordings'
complete -c flux -n "__fish_flux_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout'
complete -c flux -n "__fish_flux_needs_command" -f -a "man" -d 'Print flux\'s manual page (roff) on stdout, e.g. `flux man | man -l -`'
complete -c flux -n "__fish_flux_needs_command" -f -a "doctor" -d 'Check what flux needs: audio input, credentials, DNS, TCP, TLS and a real handshake'
complete -c flux -n "__fish_flux_needs_command" -f -a "config" -d 'Print the effective settings (flags, environment, profile, defaults) and where each came from; credentials are never shown'
complete -c flux -n "__fish_flux_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c flux -n "__fish_flux_using_subcommand file" -s j -l jobs -d 'Stream at most N files at once, up to 256 (default: as many as there are files, at most 4). Each stream has its own audio thread and connection; with --split-channels N counts streams (one per channel), not files' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l save-audio -d 'Also write the audio exactly as sent (mono 16-bit PCM at --sample-rate, after conditioning) to this WAV file (one input file only)' -r -F
complete -c flux -n "__fish_flux_using_subcommand file" -l channel-labels -d 'Names for the sides, one per channel (or per --device), comma-separated (default ch0,ch1,...): letters, digits, `-`, `_` and `.`' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l expect-text -d 'Expect this transcript: the finished turns, joined, are compared word by word after normalization (case, punctuation, spacing; docs/guide.md#assertions)' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l expect-file -d 'Expect the transcript in FILE (UTF-8; line breaks count as spaces). With --split-channels, LABEL=FILE checks one side (repeat it for each side)' -r -F
complete -c flux -n "__fish_flux_using_subcommand file" -l max-wer -d 'Word error rate allowed against --expect-text/--expect-file: word-level edits (substitutions + deletions + insertions) divided by the reference\'s words. Default 0: every word must match after normalization' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l expect-turns -d 'Expect exactly N turns (EndOfTurn, plus any turn left unconfirmed when the stream closed)' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l max-eot-latency-ms -d 'Fail when an EndOfTurn arrives more than MS milliseconds after the end of its turn\'s audio was sent (wall time, at real-time pace; not with --fast)' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l pace -d 'Send audio FACTOR times faster than real time: 0.1 to 1000 (1 = real time, the default). Flux is built for live audio: its turn timers run on audio time, so results match real time, but Deepgram does not promise the same transcripts for bursts' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l provider -d 'Where Flux runs: Deepgram (/v2/listen), Cloudflare Workers AI (@cf/deepgram/flux) or an AWS SageMaker endpoint (--endpoint NAME); or Fireworks streaming ASR; or `local`, the offline recognizer inside flux (no key; docs/providers.md#local)' -r -f -a "deepgram\t'Deepgram\'s /v2/listen (hosted, regional, self-hosted, or `flux serve`)'
cloudflare\t'Cloudflare Workers AI @cf/deepgram/flux (REST, AI Gateway, or your Worker)'
fireworks\t'Fireworks AI streaming transcription (segments, from which flux derives turns)'
sagemaker\t'An AWS SageMaker endpoint running Flux (HTTP/2 bidirectional stream, AWS credentials)'
local\t'The local recognizer inside flux: offline, no key (scripts/fetch-model.sh first)'"
complete -c flux -n "__fish_flux_using_subcommand file" -l url -d 'Send to this server instead. Deepgram: a base URL such as a `flux serve` address (ws://127.0.0.1:8787), a regional host (wss://api.eu.deepgram.com) or self-hosted Deepgram; `/v2/listen` is appended unless the path already ends with it. Cloudflare: the whole endpoint, used as given (your Worker, the REST URL, or an AI Gateway URL). Fireworks: the whole endpoint, used as given (e.g. a `flux serve` address with /v1/audio/transcriptions/streaming). SageMaker: the runtime\'s https:// base (default from the region, or AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2)' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l api-key-file -d 'Read the API key (Deepgram, Fireworks) or API token (Cloudflare) from this file instead of DEEPGRAM_API_KEY / CLOUDFLARE_API_TOKEN / FIREWORKS_API_KEY (keeps it out of `ps` and shell history)' -r -F
complete -c flux -n "__fish_flux_using_subcommand file" -l access-token-file -d 'Deepgram: read a temporary token (from /v1/auth/grant) from this file instead of DEEPGRAM_ACCESS_TOKEN; it is sent as `Authorization: Bearer`. With a key set too, the one set at the higher level (flag > environment > profile) is used, the token on a tie, and stderr says which' -r -F
complete -c flux -n "__fish_flux_using_subcommand file" -l account-id -d 'Cloudflare account id (default: CLOUDFLARE_ACCOUNT_ID)' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l gateway -d 'Cloudflare: go through this AI Gateway (sends the token as cf-aig-authorization)' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l endpoint -d 'SageMaker: the name of the endpoint running Flux' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l region -d 'SageMaker: the AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then the AWS profile\'s region)' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l header -d 'Add a header to the WebSocket request, e.g. the auth your own Worker or proxy wants; repeatable. Values are never printed' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l ca-cert -d 'Also trust the CA certificate(s) in this PEM file for wss:// (a private CA, a TLS proxy); repeatable. Mozilla\'s roots stay trusted; certificates are always verified' -r -F
complete -c flux -n "__fish_flux_using_subcommand file" -l max-reconnects -d 'Reconnect at most N times after the connection drops, fails or stalls (the count resets after a minute of healthy audio); 0 never reconnects. The open turn\'s audio is sent again, so no speech is lost' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l stall-timeout -d 'Reconnect when audio is flowing but the server has sent nothing for SECONDS (0.5 to 3600)' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l control -d 'Read control messages from FILE (a FIFO works) while streaming: one JSON object per line, as Flux\'s own messages ({"type":"Configure",...}, {"type":"ForceEndTurn"}, {"type":"CloseStream"} to finish), with an optional "at": SECONDS of audio to delay it until then. See docs/control.md' -r -F
complete -c flux -n "__fish_flux_using_subcommand file" -l model -d 'Flux model: flux-general-en (the default), or flux-general-multi for multilingual audio. Deepgram only (Cloudflare serves flux-general-en). Fireworks: fireworks-asr-large (v1, the default) or fireworks-asr-v2 (v2, preview)' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l sample-rate -d 'Sample rate sent to Flux, in Hz: 8000, 16000, 24000, 44100 or 48000 (audio is resampled to it)' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l chunk-ms -d 'Audio per WebSocket message, in milliseconds: 10 to 1000 (Deepgram recommends 80)' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l eot-threshold -d 'End-of-turn confidence needed to end a turn (0.5 to 1.0; 1.0 leaves ends to --eot-timeout-ms). Server default 0.7' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l eager-eot-threshold -d 'Confidence for EagerEndOfTurn events (0.3 to 0.9, at most --eot-threshold); enables EagerEndOfTurn and TurnResumed' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l eot-timeout-ms -d 'End a turn after this much audio without speech, whatever the confidence (500 to 60000). Server default 5000' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l keyterm -d 'Boost recognition of a term or phrase; repeat for several' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l keyterm-file -d 'Read keyterms from FILE, one per line (blank lines and lines starting with # are skipped); added to --keyterm\'s. Repeatable' -r -F
complete -c flux -n "__fish_flux_using_subcommand file" -l language-hint -d 'Expected language for flux-general-multi (en, es, fr, de, hi, ru, pt, ja, it, nl); repeat for several' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l tag -d 'Usage-reporting label; repeat for several' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l redact -d 'Redact numbers from transcripts; repeat for several kinds' -r -f -a "numbers\t'Redact numbers'
aggressive_numbers\t'Redact numbers more aggressively'"
complete -c flux -n "__fish_flux_using_subcommand file" -l language -d 'Fireworks: the spoken language, an ISO 639-1 code (en, de, es, ...; also yue, zh-hant, zh-hans); left out, Fireworks detects it' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l prompt -d 'Fireworks: words or style to expect, e.g. "Um, here\'s, uh, what was recorded." keeps fillers' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l temperature -d 'Fireworks: decoding temperature, 0 to 1 (server default 0)' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l asr-model -d 'The model directory, as for `flux serve --asr-model` [default: $XDG_DATA_HOME/flux/models/moonshine-base-en, i.e. ~/.local/share/flux/models/moonshine-base-en; fetch it with scripts/fetch-model.sh]' -r -F
complete -c flux -n "__fish_flux_using_subcommand file" -l asr-workers -d 'Decoding threads, each with its own copy of the model (about 150 MB each), shared by every stream of the run [default: 1, as for flux serve; one gives one real-time stream Updates at full cadence, two give a call\'s two sides theirs on two cores]' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l format -d 'What to print on stdout: `live` shows turns as they happen in the terminal (docs/live.md); `text` prints one line per finished turn; `jsonl` prints every event as one JSON object per line (docs/jsonl.md); `srt` and `vtt` print captions as turns finish (docs/captions.md). Default: live when stdout is a terminal, text otherwise' -r -f -a "live\t'Turns as they happen, redrawn in the terminal (stdout must be a terminal)'
text\t'One line per finished turn'
jsonl\t'Every event, one JSON object per line'
srt\t'SubRip captions from finished turns (docs/captions.md)'
vtt\t'WebVTT captions from finished turns (docs/captions.md)'"
complete -c flux -n "__fish_flux_using_subcommand file" -l color -d 'Colour in the live view and progress bar: auto (unless NO_COLOR is set and not empty, or TERM=dumb), always or never. Nothing else is ever coloured' -r -f -a "auto\t''
always\t''
never\t''"
complete -c flux -n "__fish_flux_using_subcommand file" -l config -d 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md' -r -F
complete -c flux -n "__fish_flux_using_subcommand file" -l profile -d 'Use the config file\'s [profile.NAME] on top of its [default] table' -r
complete -c flux -n "__fish_flux_using_subcommand file" -l split-channels -d 'Stream each channel of the input on its own (picked, not mixed): one connection per channel, one timeline ordered by audio time, every line naming its side'
complete -c flux -n "__fish_flux_using_subcommand file" -l fast -d 'Send audio as fast as the connection takes it (for tests and batch jobs; same caveat as --pace)'
complete -c flux -n "__fish_flux_using_subcommand file" -l sagemaker-controls -d 'SageMaker: the endpoint\'s container build takes ForceEndTurn and Configure, so send them. Without this flux ends the last turn with silence and refuses Configure, which some builds answer by ending the session'
complete -c flux -n "__fish_flux_using_subcommand file" -l allow-insecure -d 'Allow plain ws:// to a host that is not loopback (the audio and API key travel unencrypted)'
complete -c flux -n "__fish_flux_using_subcommand file" -l no-force-end-turn -d 'The server has no ForceEndTurn (self-hosted Deepgram): end the stream by sending silence until the last turn ends instead. Implied for Cloudflare'
complete -c flux -n "__fish_flux_using_subcommand file" -l numerals -d 'Write numbers as digits ("25" rather than "twenty five")'
complete -c flux -n "__fish_flux_using_subcommand file" -l profanity-filter -d 'Mask profanity in transcripts'
complete -c flux -n "__fish_flux_using_subcommand file" -l mip-opt-out -d 'Opt out of Deepgram\'s Model Improvement Program'
complete -c flux -n "__fish_flux_using_subcommand file" -l text -d 'Shorthand for --format text'
complete -c flux -n "__fish_flux_using_subcommand file" -l jsonl -d 'Shorthand for --format jsonl'
complete -c flux -n "__fish_flux_using_subcommand file" -s q -l quiet -d 'Print no status or warnings on stderr (errors are still printed)'
complete -c flux -n "__fish_flux_using_subcommand file" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c flux -n "__fish_flux_using_subcommand file" -s V -l version -d 'Print version'
complete -c flux -n "__fish_flux_using_subcommand listen" -l device -d 'Input device for --mic: an id from `flux devices`, or a unique part of an id or description (case-insensitive). Give it twice (or more) for one side per device (e.g. a headset and a monitor of what the computer plays), named by --channel-labels' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l duration -d 'Stop after this many seconds of audio (more than 0, at most 86400), counted in audio frames from the device or stdin, not wall-clock time: caps a live capture' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l save-audio -d 'Also write the audio exactly as sent (mono 16-bit PCM at --sample-rate, after conditioning) to this WAV file; `flux file FILE.wav` replays the session' -r -F
complete -c flux -n "__fish_flux_using_subcommand listen" -l rate -d 'Sample rate of the PCM on stdin, in Hz: 1000 to 384000 (required with --stdin)' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l channels -d 'Interleaved channels in the PCM on stdin; they are mixed down to mono' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l sample-format -d 'Sample format of the PCM on stdin' -r -f -a "s16le\t'Signed 16-bit little-endian integers'
f32le\t'32-bit little-endian IEEE floats in [-1, 1]'"
complete -c flux -n "__fish_flux_using_subcommand listen" -l channel-labels -d 'Names for the sides, one per channel (or per --device), comma-separated (default ch0,ch1,...): letters, digits, `-`, `_` and `.`' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l pace -d 'Send audio FACTOR times faster than real time: 0.1 to 1000 (1 = real time, the default). Flux is built for live audio: its turn timers run on audio time, so results match real time, but Deepgram does not promise the same transcripts for bursts' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l provider -d 'Where Flux runs: Deepgram (/v2/listen), Cloudflare Workers AI (@cf/deepgram/flux) or an AWS SageMaker endpoint (--endpoint NAME); or Fireworks streaming ASR; or `local`, the offline recognizer inside flux (no key; docs/providers.md#local)' -r -f -a "deepgram\t'Deepgram\'s /v2/listen (hosted, regional, self-hosted, or `flux serve`)'
cloudflare\t'Cloudflare Workers AI @cf/deepgram/flux (REST, AI Gateway, or your Worker)'
fireworks\t'Fireworks AI streaming transcription (segments, from which flux derives turns)'
sagemaker\t'An AWS SageMaker endpoint running Flux (HTTP/2 bidirectional stream, AWS credentials)'
local\t'The local recognizer inside flux: offline, no key (scripts/fetch-model.sh first)'"
complete -c flux -n "__fish_flux_using_subcommand listen" -l url -d 'Send to this server instead. Deepgram: a base URL such as a `flux serve` address (ws://127.0.0.1:8787), a regional host (wss://api.eu.deepgram.com) or self-hosted Deepgram; `/v2/listen` is appended unless the path already ends with it. Cloudflare: the whole endpoint, used as given (your Worker, the REST URL, or an AI Gateway URL). Fireworks: the whole endpoint, used as given (e.g. a `flux serve` address with /v1/audio/transcriptions/streaming). SageMaker: the runtime\'s https:// base (default from the region, or AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2)' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l api-key-file -d 'Read the API key (Deepgram, Fireworks) or API token (Cloudflare) from this file instead of DEEPGRAM_API_KEY / CLOUDFLARE_API_TOKEN / FIREWORKS_API_KEY (keeps it out of `ps` and shell history)' -r -F
complete -c flux -n "__fish_flux_using_subcommand listen" -l access-token-file -d 'Deepgram: read a temporary token (from /v1/auth/grant) from this file instead of DEEPGRAM_ACCESS_TOKEN; it is sent as `Authorization: Bearer`. With a key set too, the one set at the higher level (flag > environment > profile) is used, the token on a tie, and stderr says which' -r -F
complete -c flux -n "__fish_flux_using_subcommand listen" -l account-id -d 'Cloudflare account id (default: CLOUDFLARE_ACCOUNT_ID)' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l gateway -d 'Cloudflare: go through this AI Gateway (sends the token as cf-aig-authorization)' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l endpoint -d 'SageMaker: the name of the endpoint running Flux' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l region -d 'SageMaker: the AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then the AWS profile\'s region)' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l header -d 'Add a header to the WebSocket request, e.g. the auth your own Worker or proxy wants; repeatable. Values are never printed' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l ca-cert -d 'Also trust the CA certificate(s) in this PEM file for wss:// (a private CA, a TLS proxy); repeatable. Mozilla\'s roots stay trusted; certificates are always verified' -r -F
complete -c flux -n "__fish_flux_using_subcommand listen" -l max-reconnects -d 'Reconnect at most N times after the connection drops, fails or stalls (the count resets after a minute of healthy audio); 0 never reconnects. The open turn\'s audio is sent again, so no speech is lost' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l stall-timeout -d 'Reconnect when audio is flowing but the server has sent nothing for SECONDS (0.5 to 3600)' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l control -d 'Read control messages from FILE (a FIFO works) while streaming: one JSON object per line, as Flux\'s own messages ({"type":"Configure",...}, {"type":"ForceEndTurn"}, {"type":"CloseStream"} to finish), with an optional "at": SECONDS of audio to delay it until then. See docs/control.md' -r -F
complete -c flux -n "__fish_flux_using_subcommand listen" -l model -d 'Flux model: flux-general-en (the default), or flux-general-multi for multilingual audio. Deepgram only (Cloudflare serves flux-general-en). Fireworks: fireworks-asr-large (v1, the default) or fireworks-asr-v2 (v2, preview)' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l sample-rate -d 'Sample rate sent to Flux, in Hz: 8000, 16000, 24000, 44100 or 48000 (audio is resampled to it)' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l chunk-ms -d 'Audio per WebSocket message, in milliseconds: 10 to 1000 (Deepgram recommends 80)' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l eot-threshold -d 'End-of-turn confidence needed to end a turn (0.5 to 1.0; 1.0 leaves ends to --eot-timeout-ms). Server default 0.7' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l eager-eot-threshold -d 'Confidence for EagerEndOfTurn events (0.3 to 0.9, at most --eot-threshold); enables EagerEndOfTurn and TurnResumed' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l eot-timeout-ms -d 'End a turn after this much audio without speech, whatever the confidence (500 to 60000). Server default 5000' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l keyterm -d 'Boost recognition of a term or phrase; repeat for several' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l keyterm-file -d 'Read keyterms from FILE, one per line (blank lines and lines starting with # are skipped); added to --keyterm\'s. Repeatable' -r -F
complete -c flux -n "__fish_flux_using_subcommand listen" -l language-hint -d 'Expected language for flux-general-multi (en, es, fr, de, hi, ru, pt, ja, it, nl); repeat for several' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l tag -d 'Usage-reporting label; repeat for several' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l redact -d 'Redact numbers from transcripts; repeat for several kinds' -r -f -a "numbers\t'Redact numbers'
aggressive_numbers\t'Redact numbers more aggressively'"
complete -c flux -n "__fish_flux_using_subcommand listen" -l language -d 'Fireworks: the spoken language, an ISO 639-1 code (en, de, es, ...; also yue, zh-hant, zh-hans); left out, Fireworks detects it' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l prompt -d 'Fireworks: words or style to expect, e.g. "Um, here\'s, uh, what was recorded." keeps fillers' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l temperature -d 'Fireworks: decoding temperature, 0 to 1 (server default 0)' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l asr-model -d 'The model directory, as for `flux serve --asr-model` [default: $XDG_DATA_HOME/flux/models/moonshine-base-en, i.e. ~/.local/share/flux/models/moonshine-base-en; fetch it with scripts/fetch-model.sh]' -r -F
complete -c flux -n "__fish_flux_using_subcommand listen" -l asr-workers -d 'Decoding threads, each with its own copy of the model (about 150 MB each), shared by every stream of the run [default: 1, as for flux serve; one gives one real-time stream Updates at full cadence, two give a call\'s two sides theirs on two cores]' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l format -d 'What to print on stdout: `live` shows turns as they happen in the terminal (docs/live.md); `text` prints one line per finished turn; `jsonl` prints every event as one JSON object per line (docs/jsonl.md); `srt` and `vtt` print captions as turns finish (docs/captions.md). Default: live when stdout is a terminal, text otherwise' -r -f -a "live\t'Turns as they happen, redrawn in the terminal (stdout must be a terminal)'
text\t'One line per finished turn'
jsonl\t'Every event, one JSON object per line'
srt\t'SubRip captions from finished turns (docs/captions.md)'
vtt\t'WebVTT captions from finished turns (docs/captions.md)'"
complete -c flux -n "__fish_flux_using_subcommand listen" -l color -d 'Colour in the live view and progress bar: auto (unless NO_COLOR is set and not empty, or TERM=dumb), always or never. Nothing else is ever coloured' -r -f -a "auto\t''
always\t''
never\t''"
complete -c flux -n "__fish_flux_using_subcommand listen" -l config -d 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md' -r -F
complete -c flux -n "__fish_flux_using_subcommand listen" -l profile -d 'Use the config file\'s [profile.NAME] on top of its [default] table' -r
complete -c flux -n "__fish_flux_using_subcommand listen" -l stdin -d 'Read raw PCM from stdin until end of input (e.g. from sox, ffmpeg or arecord)'
complete -c flux -n "__fish_flux_using_subcommand listen" -l mic -d 'Capture from a microphone (the default input device, or --device) until Ctrl-C or --duration. Ctrl-C once finishes the last turn and exits 0; twice exits at once'
complete -c flux -n "__fish_flux_using_subcommand listen" -l split-channels -d 'Stream each channel of the input on its own (picked, not mixed): one connection per channel, one timeline ordered by audio time, every line naming its side'
complete -c flux -n "__fish_flux_using_subcommand listen" -l fast -d 'Send audio as fast as the connection takes it (for tests and batch jobs; same caveat as --pace)'
complete -c flux -n "__fish_flux_using_subcommand listen" -l sagemaker-controls -d 'SageMaker: the endpoint\'s container build takes ForceEndTurn and Configure, so send them. Without this flux ends the last turn with silence and refuses Configure, which some builds answer by ending the session'
complete -c flux -n "__fish_flux_using_subcommand listen" -l allow-insecure -d 'Allow plain ws:// to a host that is not loopback (the audio and API key travel unencrypted)'
complete -c flux -n "__fish_flux_using_subcommand listen" -l no-force-end-turn -d 'The server has no ForceEndTurn (self-hosted Deepgram): end the stream by sending silence until the last turn ends instead. Implied for Cloudflare'
complete -c flux -n "__fish_flux_using_subcommand listen" -l numerals -d 'Write numbers as digits ("25" rather than "twenty five")'
complete -c flux -n "__fish_flux_using_subcommand listen" -l profanity-filter -d 'Mask profanity in transcripts'
complete -c flux -n "__fish_flux_using_subcommand listen" -l mip-opt-out -d 'Opt out of Deepgram\'s Model Improvement Program'
complete -c flux -n "__fish_flux_using_subcommand listen" -l text -d 'Shorthand for --format text'
complete -c flux -n "__fish_flux_using_subcommand listen" -l jsonl -d 'Shorthand for --format jsonl'
complete -c flux -n "__fish_flux_using_subcommand listen" -s q -l quiet -d 'Print no status or warnings on stderr (errors are still printed)'
complete -c flux -n "__fish_flux_using_subcommand listen" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c flux -n "__fish_flux_using_subcommand listen" -s V -l version -d 'Print version'
complete -c flux -n "__fish_flux_using_subcommand replay" -l pace -d 'Replay FACTOR times faster than recorded (0.1 to 1000; default 1, the recorded pace)' -r
complete -c flux -n "__fish_flux_using_subcommand replay" -l format -d 'What to print on stdout: `live` shows turns as they happen in the terminal (docs/live.md); `text` prints one line per finished turn; `jsonl` prints every event as one JSON object per line (docs/jsonl.md); `srt` and `vtt` print captions as turns finish (docs/captions.md). Default: live when stdout is a terminal, text otherwise' -r -f -a "live\t'Turns as they happen, redrawn in the terminal (stdout must be a terminal)'
text\t'One line per finished turn'
jsonl\t'Every event, one JSON object per line'
srt\t'SubRip captions from finished turns (docs/captions.md)'
vtt\t'WebVTT captions from finished turns (docs/captions.md)'"
complete -c flux -n "__fish_flux_using_subcommand replay" -l color -d 'Colour in the live view and progress bar: auto (unless NO_COLOR is set and not empty, or TERM=dumb), always or never. Nothing else is ever coloured' -r -f -a "auto\t''
always\t''
never\t''"
complete -c flux -n "__fish_flux_using_subcommand replay" -l config -d 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md' -r -F
complete -c flux -n "__fish_flux_using_subcommand replay" -l profile -d 'Use the config file\'s [profile.NAME] on top of its [default] table' -r
complete -c flux -n "__fish_flux_using_subcommand replay" -l fast -d 'Render everything at once'
complete -c flux -n "__fish_flux_using_subcommand replay" -l text -d 'Shorthand for --format text'
complete -c flux -n "__fish_flux_using_subcommand replay" -l jsonl -d 'Shorthand for --format jsonl'
complete -c flux -n "__fish_flux_using_subcommand replay" -s q -l quiet -d 'Print no status or warnings on stderr (errors are still printed)'
complete -c flux -n "__fish_flux_using_subcommand replay" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c flux -n "__fish_flux_using_subcommand replay" -s V -l version -d 'Print version'
complete -c flux -n "__fish_flux_using_subcommand devices" -l config -d 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md' -r -F
complete -c flux -n "__fish_flux_using_subcommand devices" -l profile -d 'Use the config file\'s [profile.NAME] on top of its [default] table' -r
complete -c flux -n "__fish_flux_using_subcommand devices" -l jsonl -d 'One JSON object per device: {id, description, default, channels, sample_rates, default_config: {sample_format, sample_rate, channels}}'
complete -c flux -n "__fish_flux_using_subcommand devices" -s h -l help -d 'Print help'
complete -c flux -n "__fish_flux_using_subcommand devices" -s V -l version -d 'Print version'
complete -c flux -n "__fish_flux_using_subcommand serve" -l listen -d 'Address to listen on; port 0 picks a free port (the address is printed on stdout)' -r
complete -c flux -n "__fish_flux_using_subcommand serve" -l api-key -d 'Require this API key (`Authorization: Token KEY`, or `Bearer KEY` on Cloudflare routes, or the raw KEY on Fireworks routes; on the SageMaker front end, the SigV4 access key id); /v2/listen also takes `Bearer TOKEN` with a token from POST /v1/auth/grant' -r
complete -c flux -n "__fish_flux_using_subcommand serve" -l script -d 'Transcript script: one line per turn, revealed word by word as the turn\'s speech goes on' -r -F
complete -c flux -n "__fish_flux_using_subcommand serve" -l replay -d 'Answer every connection with the server messages of a session recorded with `flux ... --jsonl`, each sent when the incoming audio reaches its time (docs/serve.md)' -r -F
complete -c flux -n "__fish_flux_using_subcommand serve" -l log -d 'Append one JSON line per thing received (handshakes, audio frames, control messages, closes) to FILE' -r -F
complete -c flux -n "__fish_flux_using_subcommand serve" -l fault -d 'Inject a fault, e.g. `drop:at=2.5,conn=1`, `reject:status=429`, `delay:ms=200`; repeatable (docs/serve.md lists them all)' -r
complete -c flux -n "__fish_flux_using_subcommand serve" -l asr -d 'Recognize the words with a local model instead of a script: `moonshine` (Moonshine base-en on the CPU; fetch it once with scripts/fetch-model.sh)' -r -f -a "moonshine\t''"
complete -c flux -n "__fish_flux_using_subcommand serve" -l asr-model -d 'The model directory for --asr [default: $XDG_DATA_HOME/flux/models/moonshine-base-en, i.e. ~/.local/share/flux/models/moonshine-base-en]' -r -F
complete -c flux -n "__fish_flux_using_subcommand serve" -l asr-workers -d 'Decoding threads for --asr, each with its own copy of the model (about 150 MB each); streams share them' -r
complete -c flux -n "__fish_flux_using_subcommand serve" -l idle-timeout -d 'Close a connection that has received no audio for SECONDS, as Deepgram does (a fatal `Error` NET-0001, then close 1011), so keep-alive logic can be tested; 0 never closes' -r
complete -c flux -n "__fish_flux_using_subcommand serve" -l sagemaker-listen -d 'Also serve AWS SageMaker\'s bidirectional stream (HTTPS, HTTP/2, a certificate made at start) on this address; its https:// URL is printed on stdout after the ws:// one' -r
complete -c flux -n "__fish_flux_using_subcommand serve" -l sagemaker-ca -d 'Write the SageMaker front end\'s CA certificate (PEM) to FILE, for clients to trust (`flux --ca-cert FILE`, `AWS_CA_BUNDLE=FILE`)' -r -F
complete -c flux -n "__fish_flux_using_subcommand serve" -l sagemaker-session-cap -d 'End each SageMaker stream after SECONDS of audio with a ModelStreamError, as SageMaker ends streams at its 30-minute cap (audio time, so tests are repeatable)' -r
complete -c flux -n "__fish_flux_using_subcommand serve" -l config -d 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md' -r -F
complete -c flux -n "__fish_flux_using_subcommand serve" -l profile -d 'Use the config file\'s [profile.NAME] on top of its [default] table' -r
complete -c flux -n "__fish_flux_using_subcommand serve" -s h -l help -d 'Print help'
complete -c flux -n "__fish_flux_using_subcommand serve" -s V -l version -d 'Print version'
complete -c flux -n "__fish_flux_using_subcommand load" -s n -l streams -d 'Concurrent streams, 1 to 100000: each its own connection, paced in real time' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l ramp -d 'Start the streams evenly over this many seconds (0 to 3600; default 0: all at once)' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l duration -d 'Each stream sends this many seconds of audio, looping its recordings (more than 0, at most 86400)' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l loops -d 'Each stream plays its recordings this many times (default 1)' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l assert-p95-eot-ms -d 'Exit 7 when the 95th percentile of end-of-turn latency over all streams is above MS milliseconds (or no turn ended at all)' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l assert-errors -d 'Exit 7 when more than N errors were counted (refused handshakes, drops, unexpected closes, server Error messages, stalls, failed streams); failed streams then do not decide the exit status themselves' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l provider -d 'Where Flux runs: Deepgram (/v2/listen), Cloudflare Workers AI (@cf/deepgram/flux) or an AWS SageMaker endpoint (--endpoint NAME); or Fireworks streaming ASR; or `local`, the offline recognizer inside flux (no key; docs/providers.md#local)' -r -f -a "deepgram\t'Deepgram\'s /v2/listen (hosted, regional, self-hosted, or `flux serve`)'
cloudflare\t'Cloudflare Workers AI @cf/deepgram/flux (REST, AI Gateway, or your Worker)'
fireworks\t'Fireworks AI streaming transcription (segments, from which flux derives turns)'
sagemaker\t'An AWS SageMaker endpoint running Flux (HTTP/2 bidirectional stream, AWS credentials)'
local\t'The local recognizer inside flux: offline, no key (scripts/fetch-model.sh first)'"
complete -c flux -n "__fish_flux_using_subcommand load" -l url -d 'Send to this server instead. Deepgram: a base URL such as a `flux serve` address (ws://127.0.0.1:8787), a regional host (wss://api.eu.deepgram.com) or self-hosted Deepgram; `/v2/listen` is appended unless the path already ends with it. Cloudflare: the whole endpoint, used as given (your Worker, the REST URL, or an AI Gateway URL). Fireworks: the whole endpoint, used as given (e.g. a `flux serve` address with /v1/audio/transcriptions/streaming). SageMaker: the runtime\'s https:// base (default from the region, or AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2)' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l api-key-file -d 'Read the API key (Deepgram, Fireworks) or API token (Cloudflare) from this file instead of DEEPGRAM_API_KEY / CLOUDFLARE_API_TOKEN / FIREWORKS_API_KEY (keeps it out of `ps` and shell history)' -r -F
complete -c flux -n "__fish_flux_using_subcommand load" -l access-token-file -d 'Deepgram: read a temporary token (from /v1/auth/grant) from this file instead of DEEPGRAM_ACCESS_TOKEN; it is sent as `Authorization: Bearer`. With a key set too, the one set at the higher level (flag > environment > profile) is used, the token on a tie, and stderr says which' -r -F
complete -c flux -n "__fish_flux_using_subcommand load" -l account-id -d 'Cloudflare account id (default: CLOUDFLARE_ACCOUNT_ID)' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l gateway -d 'Cloudflare: go through this AI Gateway (sends the token as cf-aig-authorization)' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l endpoint -d 'SageMaker: the name of the endpoint running Flux' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l region -d 'SageMaker: the AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then the AWS profile\'s region)' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l header -d 'Add a header to the WebSocket request, e.g. the auth your own Worker or proxy wants; repeatable. Values are never printed' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l ca-cert -d 'Also trust the CA certificate(s) in this PEM file for wss:// (a private CA, a TLS proxy); repeatable. Mozilla\'s roots stay trusted; certificates are always verified' -r -F
complete -c flux -n "__fish_flux_using_subcommand load" -l max-reconnects -d 'Reconnect at most N times after the connection drops, fails or stalls (the count resets after a minute of healthy audio); 0 never reconnects. The open turn\'s audio is sent again, so no speech is lost' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l stall-timeout -d 'Reconnect when audio is flowing but the server has sent nothing for SECONDS (0.5 to 3600)' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l control -d 'Read control messages from FILE (a FIFO works) while streaming: one JSON object per line, as Flux\'s own messages ({"type":"Configure",...}, {"type":"ForceEndTurn"}, {"type":"CloseStream"} to finish), with an optional "at": SECONDS of audio to delay it until then. See docs/control.md' -r -F
complete -c flux -n "__fish_flux_using_subcommand load" -l model -d 'Flux model: flux-general-en (the default), or flux-general-multi for multilingual audio. Deepgram only (Cloudflare serves flux-general-en). Fireworks: fireworks-asr-large (v1, the default) or fireworks-asr-v2 (v2, preview)' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l sample-rate -d 'Sample rate sent to Flux, in Hz: 8000, 16000, 24000, 44100 or 48000 (audio is resampled to it)' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l chunk-ms -d 'Audio per WebSocket message, in milliseconds: 10 to 1000 (Deepgram recommends 80)' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l eot-threshold -d 'End-of-turn confidence needed to end a turn (0.5 to 1.0; 1.0 leaves ends to --eot-timeout-ms). Server default 0.7' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l eager-eot-threshold -d 'Confidence for EagerEndOfTurn events (0.3 to 0.9, at most --eot-threshold); enables EagerEndOfTurn and TurnResumed' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l eot-timeout-ms -d 'End a turn after this much audio without speech, whatever the confidence (500 to 60000). Server default 5000' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l keyterm -d 'Boost recognition of a term or phrase; repeat for several' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l keyterm-file -d 'Read keyterms from FILE, one per line (blank lines and lines starting with # are skipped); added to --keyterm\'s. Repeatable' -r -F
complete -c flux -n "__fish_flux_using_subcommand load" -l language-hint -d 'Expected language for flux-general-multi (en, es, fr, de, hi, ru, pt, ja, it, nl); repeat for several' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l tag -d 'Usage-reporting label; repeat for several' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l redact -d 'Redact numbers from transcripts; repeat for several kinds' -r -f -a "numbers\t'Redact numbers'
aggressive_numbers\t'Redact numbers more aggressively'"
complete -c flux -n "__fish_flux_using_subcommand load" -l language -d 'Fireworks: the spoken language, an ISO 639-1 code (en, de, es, ...; also yue, zh-hant, zh-hans); left out, Fireworks detects it' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l prompt -d 'Fireworks: words or style to expect, e.g. "Um, here\'s, uh, what was recorded." keeps fillers' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l temperature -d 'Fireworks: decoding temperature, 0 to 1 (server default 0)' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l asr-model -d 'The model directory, as for `flux serve --asr-model` [default: $XDG_DATA_HOME/flux/models/moonshine-base-en, i.e. ~/.local/share/flux/models/moonshine-base-en; fetch it with scripts/fetch-model.sh]' -r -F
complete -c flux -n "__fish_flux_using_subcommand load" -l asr-workers -d 'Decoding threads, each with its own copy of the model (about 150 MB each), shared by every stream of the run [default: 1, as for flux serve; one gives one real-time stream Updates at full cadence, two give a call\'s two sides theirs on two cores]' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l config -d 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md' -r -F
complete -c flux -n "__fish_flux_using_subcommand load" -l profile -d 'Use the config file\'s [profile.NAME] on top of its [default] table' -r
complete -c flux -n "__fish_flux_using_subcommand load" -l jsonl -d 'Write the report as JSON lines (one per stream, then the summary) instead of text'
complete -c flux -n "__fish_flux_using_subcommand load" -s q -l quiet -d 'No start line or live status on stderr (the report and errors are still written)'
complete -c flux -n "__fish_flux_using_subcommand load" -l sagemaker-controls -d 'SageMaker: the endpoint\'s container build takes ForceEndTurn and Configure, so send them. Without this flux ends the last turn with silence and refuses Configure, which some builds answer by ending the session'
complete -c flux -n "__fish_flux_using_subcommand load" -l allow-insecure -d 'Allow plain ws:// to a host that is not loopback (the audio and API key travel unencrypted)'
complete -c flux -n "__fish_flux_using_subcommand load" -l no-force-end-turn -d 'The server has no ForceEndTurn (self-hosted Deepgram): end the stream by sending silence until the last turn ends instead. Implied for Cloudflare'
complete -c flux -n "__fish_flux_using_subcommand load" -l numerals -d 'Write numbers as digits ("25" rather than "twenty five")'
complete -c flux -n "__fish_flux_using_subcommand load" -l profanity-filter -d 'Mask profanity in transcripts'
complete -c flux -n "__fish_flux_using_subcommand load" -l mip-opt-out -d 'Opt out of Deepgram\'s Model Improvement Program'
complete -c flux -n "__fish_flux_using_subcommand load" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c flux -n "__fish_flux_using_subcommand load" -s V -l version -d 'Print version'
complete -c flux -n "__fish_flux_using_subcommand completions" -l config -d 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md' -r -F
complete -c flux -n "__fish_flux_using_subcommand completions" -l profile -d 'Use the config file\'s [profile.NAME] on top of its [default] table' -r
complete -c flux -n "__fish_flux_using_subcommand completions" -s h -l help -d 'Print help'
complete -c flux -n "__fish_flux_using_subcommand completions" -s V -l version -d 'Print version'
complete -c flux -n "__fish_flux_using_subcommand man" -l config -d 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md' -r -F
complete -c flux -n "__fish_flux_using_subcommand man" -l profile -d 'Use the config file\'s [profile.NAME] on top of its [default] table' -r
complete -c flux -n "__fish_flux_using_subcommand man" -s h -l help -d 'Print help'
complete -c flux -n "__fish_flux_using_subcommand man" -s V -l version -d 'Print version'
complete -c flux -n "__fish_flux_using_subcommand doctor" -l timeout -d 'Give each network step (DNS, TCP, TLS, the handshake) this long: 0.1 to 300 seconds' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l provider -d 'Where Flux runs: Deepgram (/v2/listen), Cloudflare Workers AI (@cf/deepgram/flux) or an AWS SageMaker endpoint (--endpoint NAME); or Fireworks streaming ASR; or `local`, the offline recognizer inside flux (no key; docs/providers.md#local)' -r -f -a "deepgram\t'Deepgram\'s /v2/listen (hosted, regional, self-hosted, or `flux serve`)'
cloudflare\t'Cloudflare Workers AI @cf/deepgram/flux (REST, AI Gateway, or your Worker)'
fireworks\t'Fireworks AI streaming transcription (segments, from which flux derives turns)'
sagemaker\t'An AWS SageMaker endpoint running Flux (HTTP/2 bidirectional stream, AWS credentials)'
local\t'The local recognizer inside flux: offline, no key (scripts/fetch-model.sh first)'"
complete -c flux -n "__fish_flux_using_subcommand doctor" -l url -d 'Send to this server instead. Deepgram: a base URL such as a `flux serve` address (ws://127.0.0.1:8787), a regional host (wss://api.eu.deepgram.com) or self-hosted Deepgram; `/v2/listen` is appended unless the path already ends with it. Cloudflare: the whole endpoint, used as given (your Worker, the REST URL, or an AI Gateway URL). Fireworks: the whole endpoint, used as given (e.g. a `flux serve` address with /v1/audio/transcriptions/streaming). SageMaker: the runtime\'s https:// base (default from the region, or AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2)' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l api-key-file -d 'Read the API key (Deepgram, Fireworks) or API token (Cloudflare) from this file instead of DEEPGRAM_API_KEY / CLOUDFLARE_API_TOKEN / FIREWORKS_API_KEY (keeps it out of `ps` and shell history)' -r -F
complete -c flux -n "__fish_flux_using_subcommand doctor" -l access-token-file -d 'Deepgram: read a temporary token (from /v1/auth/grant) from this file instead of DEEPGRAM_ACCESS_TOKEN; it is sent as `Authorization: Bearer`. With a key set too, the one set at the higher level (flag > environment > profile) is used, the token on a tie, and stderr says which' -r -F
complete -c flux -n "__fish_flux_using_subcommand doctor" -l account-id -d 'Cloudflare account id (default: CLOUDFLARE_ACCOUNT_ID)' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l gateway -d 'Cloudflare: go through this AI Gateway (sends the token as cf-aig-authorization)' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l endpoint -d 'SageMaker: the name of the endpoint running Flux' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l region -d 'SageMaker: the AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then the AWS profile\'s region)' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l header -d 'Add a header to the WebSocket request, e.g. the auth your own Worker or proxy wants; repeatable. Values are never printed' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l ca-cert -d 'Also trust the CA certificate(s) in this PEM file for wss:// (a private CA, a TLS proxy); repeatable. Mozilla\'s roots stay trusted; certificates are always verified' -r -F
complete -c flux -n "__fish_flux_using_subcommand doctor" -l max-reconnects -d 'Reconnect at most N times after the connection drops, fails or stalls (the count resets after a minute of healthy audio); 0 never reconnects. The open turn\'s audio is sent again, so no speech is lost' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l stall-timeout -d 'Reconnect when audio is flowing but the server has sent nothing for SECONDS (0.5 to 3600)' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l control -d 'Read control messages from FILE (a FIFO works) while streaming: one JSON object per line, as Flux\'s own messages ({"type":"Configure",...}, {"type":"ForceEndTurn"}, {"type":"CloseStream"} to finish), with an optional "at": SECONDS of audio to delay it until then. See docs/control.md' -r -F
complete -c flux -n "__fish_flux_using_subcommand doctor" -l model -d 'Flux model: flux-general-en (the default), or flux-general-multi for multilingual audio. Deepgram only (Cloudflare serves flux-general-en). Fireworks: fireworks-asr-large (v1, the default) or fireworks-asr-v2 (v2, preview)' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l sample-rate -d 'Sample rate sent to Flux, in Hz: 8000, 16000, 24000, 44100 or 48000 (audio is resampled to it)' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l chunk-ms -d 'Audio per WebSocket message, in milliseconds: 10 to 1000 (Deepgram recommends 80)' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l eot-threshold -d 'End-of-turn confidence needed to end a turn (0.5 to 1.0; 1.0 leaves ends to --eot-timeout-ms). Server default 0.7' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l eager-eot-threshold -d 'Confidence for EagerEndOfTurn events (0.3 to 0.9, at most --eot-threshold); enables EagerEndOfTurn and TurnResumed' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l eot-timeout-ms -d 'End a turn after this much audio without speech, whatever the confidence (500 to 60000). Server default 5000' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l keyterm -d 'Boost recognition of a term or phrase; repeat for several' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l keyterm-file -d 'Read keyterms from FILE, one per line (blank lines and lines starting with # are skipped); added to --keyterm\'s. Repeatable' -r -F
complete -c flux -n "__fish_flux_using_subcommand doctor" -l language-hint -d 'Expected language for flux-general-multi (en, es, fr, de, hi, ru, pt, ja, it, nl); repeat for several' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l tag -d 'Usage-reporting label; repeat for several' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l redact -d 'Redact numbers from transcripts; repeat for several kinds' -r -f -a "numbers\t'Redact numbers'
aggressive_numbers\t'Redact numbers more aggressively'"
complete -c flux -n "__fish_flux_using_subcommand doctor" -l language -d 'Fireworks: the spoken language, an ISO 639-1 code (en, de, es, ...; also yue, zh-hant, zh-hans); left out, Fireworks detects it' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l prompt -d 'Fireworks: words or style to expect, e.g. "Um, here\'s, uh, what was recorded." keeps fillers' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l temperature -d 'Fireworks: decoding temperature, 0 to 1 (server default 0)' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l asr-model -d 'The model directory, as for `flux serve --asr-model` [default: $XDG_DATA_HOME/flux/models/moonshine-base-en, i.e. ~/.local/share/flux/models/moonshine-base-en; fetch it with scripts/fetch-model.sh]' -r -F
complete -c flux -n "__fish_flux_using_subcommand doctor" -l asr-workers -d 'Decoding threads, each with its own copy of the model (about 150 MB each), shared by every stream of the run [default: 1, as for flux serve; one gives one real-time stream Updates at full cadence, two give a call\'s two sides theirs on two cores]' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l config -d 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md' -r -F
complete -c flux -n "__fish_flux_using_subcommand doctor" -l profile -d 'Use the config file\'s [profile.NAME] on top of its [default] table' -r
complete -c flux -n "__fish_flux_using_subcommand doctor" -l jsonl -d 'One JSON object per check ({type, check, ok, detail, fix, ...}) and a summary line'
complete -c flux -n "__fish_flux_using_subcommand doctor" -l sagemaker-controls -d 'SageMaker: the endpoint\'s container build takes ForceEndTurn and Configure, so send them. Without this flux ends the last turn with silence and refuses Configure, which some builds answer by ending the session'
complete -c flux -n "__fish_flux_using_subcommand doctor" -l allow-insecure -d 'Allow plain ws:// to a host that is not loopback (the audio and API key travel unencrypted)'
complete -c flux -n "__fish_flux_using_subcommand doctor" -l no-force-end-turn -d 'The server has no ForceEndTurn (self-hosted Deepgram): end the stream by sending silence until the last turn ends instead. Implied for Cloudflare'
complete -c flux -n "__fish_flux_using_subcommand doctor" -l numerals -d 'Write numbers as digits ("25" rather than "twenty five")'
complete -c flux -n "__fish_flux_using_subcommand doctor" -l profanity-filter -d 'Mask profanity in transcripts'
complete -c flux -n "__fish_flux_using_subcommand doctor" -l mip-opt-out -d 'Opt out of Deepgram\'s Model Improvement Program'
complete -c flux -n "__fish_flux_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c flux -n "__fish_flux_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c flux -n "__fish_flux_using_subcommand config" -l pace -d 'Send audio FACTOR times faster than real time: 0.1 to 1000 (1 = real time, the default). Flux is built for live audio: its turn timers run on audio time, so results match real time, but Deepgram does not promise the same transcripts for bursts' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l provider -d 'Where Flux runs: Deepgram (/v2/listen), Cloudflare Workers AI (@cf/deepgram/flux) or an AWS SageMaker endpoint (--endpoint NAME); or Fireworks streaming ASR; or `local`, the offline recognizer inside flux (no key; docs/providers.md#local)' -r -f -a "deepgram\t'Deepgram\'s /v2/listen (hosted, regional, self-hosted, or `flux serve`)'
cloudflare\t'Cloudflare Workers AI @cf/deepgram/flux (REST, AI Gateway, or your Worker)'
fireworks\t'Fireworks AI streaming transcription (segments, from which flux derives turns)'
sagemaker\t'An AWS SageMaker endpoint running Flux (HTTP/2 bidirectional stream, AWS credentials)'
local\t'The local recognizer inside flux: offline, no key (scripts/fetch-model.sh first)'"
complete -c flux -n "__fish_flux_using_subcommand config" -l url -d 'Send to this server instead. Deepgram: a base URL such as a `flux serve` address (ws://127.0.0.1:8787), a regional host (wss://api.eu.deepgram.com) or self-hosted Deepgram; `/v2/listen` is appended unless the path already ends with it. Cloudflare: the whole endpoint, used as given (your Worker, the REST URL, or an AI Gateway URL). Fireworks: the whole endpoint, used as given (e.g. a `flux serve` address with /v1/audio/transcriptions/streaming). SageMaker: the runtime\'s https:// base (default from the region, or AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2)' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l api-key-file -d 'Read the API key (Deepgram, Fireworks) or API token (Cloudflare) from this file instead of DEEPGRAM_API_KEY / CLOUDFLARE_API_TOKEN / FIREWORKS_API_KEY (keeps it out of `ps` and shell history)' -r -F
complete -c flux -n "__fish_flux_using_subcommand config" -l access-token-file -d 'Deepgram: read a temporary token (from /v1/auth/grant) from this file instead of DEEPGRAM_ACCESS_TOKEN; it is sent as `Authorization: Bearer`. With a key set too, the one set at the higher level (flag > environment > profile) is used, the token on a tie, and stderr says which' -r -F
complete -c flux -n "__fish_flux_using_subcommand config" -l account-id -d 'Cloudflare account id (default: CLOUDFLARE_ACCOUNT_ID)' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l gateway -d 'Cloudflare: go through this AI Gateway (sends the token as cf-aig-authorization)' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l endpoint -d 'SageMaker: the name of the endpoint running Flux' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l region -d 'SageMaker: the AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then the AWS profile\'s region)' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l header -d 'Add a header to the WebSocket request, e.g. the auth your own Worker or proxy wants; repeatable. Values are never printed' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l ca-cert -d 'Also trust the CA certificate(s) in this PEM file for wss:// (a private CA, a TLS proxy); repeatable. Mozilla\'s roots stay trusted; certificates are always verified' -r -F
complete -c flux -n "__fish_flux_using_subcommand config" -l max-reconnects -d 'Reconnect at most N times after the connection drops, fails or stalls (the count resets after a minute of healthy audio); 0 never reconnects. The open turn\'s audio is sent again, so no speech is lost' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l stall-timeout -d 'Reconnect when audio is flowing but the server has sent nothing for SECONDS (0.5 to 3600)' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l control -d 'Read control messages from FILE (a FIFO works) while streaming: one JSON object per line, as Flux\'s own messages ({"type":"Configure",...}, {"type":"ForceEndTurn"}, {"type":"CloseStream"} to finish), with an optional "at": SECONDS of audio to delay it until then. See docs/control.md' -r -F
complete -c flux -n "__fish_flux_using_subcommand config" -l model -d 'Flux model: flux-general-en (the default), or flux-general-multi for multilingual audio. Deepgram only (Cloudflare serves flux-general-en). Fireworks: fireworks-asr-large (v1, the default) or fireworks-asr-v2 (v2, preview)' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l sample-rate -d 'Sample rate sent to Flux, in Hz: 8000, 16000, 24000, 44100 or 48000 (audio is resampled to it)' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l chunk-ms -d 'Audio per WebSocket message, in milliseconds: 10 to 1000 (Deepgram recommends 80)' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l eot-threshold -d 'End-of-turn confidence needed to end a turn (0.5 to 1.0; 1.0 leaves ends to --eot-timeout-ms). Server default 0.7' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l eager-eot-threshold -d 'Confidence for EagerEndOfTurn events (0.3 to 0.9, at most --eot-threshold); enables EagerEndOfTurn and TurnResumed' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l eot-timeout-ms -d 'End a turn after this much audio without speech, whatever the confidence (500 to 60000). Server default 5000' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l keyterm -d 'Boost recognition of a term or phrase; repeat for several' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l keyterm-file -d 'Read keyterms from FILE, one per line (blank lines and lines starting with # are skipped); added to --keyterm\'s. Repeatable' -r -F
complete -c flux -n "__fish_flux_using_subcommand config" -l language-hint -d 'Expected language for flux-general-multi (en, es, fr, de, hi, ru, pt, ja, it, nl); repeat for several' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l tag -d 'Usage-reporting label; repeat for several' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l redact -d 'Redact numbers from transcripts; repeat for several kinds' -r -f -a "numbers\t'Redact numbers'
aggressive_numbers\t'Redact numbers more aggressively'"
complete -c flux -n "__fish_flux_using_subcommand config" -l language -d 'Fireworks: the spoken language, an ISO 639-1 code (en, de, es, ...; also yue, zh-hant, zh-hans); left out, Fireworks detects it' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l prompt -d 'Fireworks: words or style to expect, e.g. "Um, here\'s, uh, what was recorded." keeps fillers' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l temperature -d 'Fireworks: decoding temperature, 0 to 1 (server default 0)' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l asr-model -d 'The model directory, as for `flux serve --asr-model` [default: $XDG_DATA_HOME/flux/models/moonshine-base-en, i.e. ~/.local/share/flux/models/moonshine-base-en; fetch it with scripts/fetch-model.sh]' -r -F
complete -c flux -n "__fish_flux_using_subcommand config" -l asr-workers -d 'Decoding threads, each with its own copy of the model (about 150 MB each), shared by every stream of the run [default: 1, as for flux serve; one gives one real-time stream Updates at full cadence, two give a call\'s two sides theirs on two cores]' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l format -d 'What to print on stdout: `live` shows turns as they happen in the terminal (docs/live.md); `text` prints one line per finished turn; `jsonl` prints every event as one JSON object per line (docs/jsonl.md); `srt` and `vtt` print captions as turns finish (docs/captions.md). Default: live when stdout is a terminal, text otherwise' -r -f -a "live\t'Turns as they happen, redrawn in the terminal (stdout must be a terminal)'
text\t'One line per finished turn'
jsonl\t'Every event, one JSON object per line'
srt\t'SubRip captions from finished turns (docs/captions.md)'
vtt\t'WebVTT captions from finished turns (docs/captions.md)'"
complete -c flux -n "__fish_flux_using_subcommand config" -l color -d 'Colour in the live view and progress bar: auto (unless NO_COLOR is set and not empty, or TERM=dumb), always or never. Nothing else is ever coloured' -r -f -a "auto\t''
always\t''
never\t''"
complete -c flux -n "__fish_flux_using_subcommand config" -l config -d 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md' -r -F
complete -c flux -n "__fish_flux_using_subcommand config" -l profile -d 'Use the config file\'s [profile.NAME] on top of its [default] table' -r
complete -c flux -n "__fish_flux_using_subcommand config" -l fast -d 'Send audio as fast as the connection takes it (for tests and batch jobs; same caveat as --pace)'
complete -c flux -n "__fish_flux_using_subcommand config" -l sagemaker-controls -d 'SageMaker: the endpoint\'s container build takes ForceEndTurn and Configure, so send them. Without this flux ends the last turn with silence and refuses Configure, which some builds answer by ending the session'
complete -c flux -n "__fish_flux_using_subcommand config" -l allow-insecure -d 'Allow plain ws:// to a host that is not loopback (the audio and API key travel unencrypted)'
complete -c flux -n "__fish_flux_using_subcommand config" -l no-force-end-turn -d 'The server has no ForceEndTurn (self-hosted Deepgram): end the stream by sending silence until the last turn ends instead. Implied for Cloudflare'
complete -c flux -n "__fish_flux_using_subcommand config" -l numerals -d 'Write numbers as digits ("25" rather than "twenty five")'
complete -c flux -n "__fish_flux_using_subcommand config" -l profanity-filter -d 'Mask profanity in transcripts'
complete -c flux -n "__fish_flux_using_subcommand config" -l mip-opt-out -d 'Opt out of Deepgram\'s Model Improvement Program'
complete -c flux -n "__fish_flux_using_subcommand config" -l text -d 'Shorthand for --format text'
complete -c flux -n "__fish_flux_using_subcommand config" -l jsonl -d 'Shorthand for --format jsonl'
complete -c flux -n "__fish_flux_using_subcommand config" -s q -l quiet -d 'Print no status or warnings on stderr (errors are still printed)'
complete -c flux -n "__fish_flux_using_subcommand config" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c flux -n "__fish_flux_using_subcommand config" -s V -l version -d 'Print version'
complete -c flux -n "__fish_flux_using_subcommand help; and not __fish_seen_subcommand_from file listen replay devices serve load completions man doctor config help" -f -a "file" -d 'Stream WAV files through Flux (each its own stream), paced like live audio by default'
complete -c flux -n "__fish_flux_using_subcommand help; and not __fish_seen_subcommand_from file listen replay devices serve load completions man doctor config help" -f -a "listen" -d 'Stream live audio through Flux: a microphone (--mic) or raw PCM on stdin (--stdin)'
complete -c flux -n "__fish_flux_using_subcommand help; and not __fish_seen_subcommand_from file listen replay devices serve load completions man doctor config help" -f -a "replay" -d 'Re-render a session recorded with --jsonl (text, captions or the live view), at its recorded pace or faster, without any server'
complete -c flux -n "__fish_flux_using_subcommand help; and not __fish_seen_subcommand_from file listen replay devices serve load completions man doctor config help" -f -a "devices" -d 'List audio input devices (ids for `flux listen --mic --device`)'
complete -c flux -n "__fish_flux_using_subcommand help; and not __fish_seen_subcommand_from file listen replay devices serve load completions man doctor config help" -f -a "serve" -d 'Run a local Flux-compatible server, for offline development and CI'
complete -c flux -n "__fish_flux_using_subcommand help; and not __fish_seen_subcommand_from file listen replay devices serve load completions man doctor config help" -f -a "load" -d 'Load-test a Flux deployment: N concurrent real-time streams looping WAV recordings'
complete -c flux -n "__fish_flux_using_subcommand help; and not __fish_seen_subcommand_from file listen replay devices serve load completions man doctor config help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout'
complete -c flux -n "__fish_flux_using_subcommand help; and not __fish_seen_subcommand_from file listen replay devices serve load completions man doctor config help" -f -a "man" -d 'Print flux\'s manual page (roff) on stdout, e.g. `flux man | man -l -`'
complete -c flux -n "__fish_flux_using_subcommand help; and not __fish_seen_subcommand_from file listen replay devices serve load completions man doctor config help" -f -a "doctor" -d 'Check what flux needs: audio input, credentials, DNS, TCP, TLS and a real handshake'
complete -c flux -n "__fish_flux_using_subcommand help; and not __fish_seen_subcommand_from file listen replay devices serve load completions man doctor config help" -f -a "config" -d 'Print the effective settings (flags, environment, profile, defaults) and where each came from; credentials are never shown'
complete -c flux -n "__fish_flux_using_subcommand help; and not __fish_seen_subcommand_from file listen replay devices serve load completions man doctor config help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
