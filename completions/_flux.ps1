
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'flux' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'flux'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'flux' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Use the config file''s [profile.NAME] on top of its [default] table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('file', 'file', [CompletionResultType]::ParameterValue, 'Stream WAV files through Flux (each its own stream), paced like live audio by default')
            [CompletionResult]::new('listen', 'listen', [CompletionResultType]::ParameterValue, 'Stream live audio through Flux: a microphone (--mic) or raw PCM on stdin (--stdin)')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Re-render a session recorded with --jsonl (text, captions or the live view), at its recorded pace or faster, without any server')
            [CompletionResult]::new('devices', 'devices', [CompletionResultType]::ParameterValue, 'List audio input devices (ids for `flux listen --mic --device`)')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run a local Flux-compatible server, for offline development and CI')
            [CompletionResult]::new('load', 'load', [CompletionResultType]::ParameterValue, 'Load-test a Flux deployment: N concurrent real-time streams looping WAV recordings')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print flux''s manual page (roff) on stdout, e.g. `flux man | man -l -`')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check what flux needs: audio input, credentials, DNS, TCP, TLS and a real handshake')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Print the effective settings (flags, environment, profile, defaults) and where each came from; credentials are never shown')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'flux;file' {
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Stream at most N files at once, up to 256 (default: as many as there are files, at most 4). Each stream has its own audio thread and connection; with --split-channels N counts streams (one per channel), not files')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Stream at most N files at once, up to 256 (default: as many as there are files, at most 4). Each stream has its own audio thread and connection; with --split-channels N counts streams (one per channel), not files')
            [CompletionResult]::new('--save-audio', '--save-audio', [CompletionResultType]::ParameterName, 'Also write the audio exactly as sent (mono 16-bit PCM at --sample-rate, after conditioning) to this WAV file (one input file only)')
            [CompletionResult]::new('--channel-labels', '--channel-labels', [CompletionResultType]::ParameterName, 'Names for the sides, one per channel (or per --device), comma-separated (default ch0,ch1,...): letters, digits, `-`, `_` and `.`')
            [CompletionResult]::new('--expect-text', '--expect-text', [CompletionResultType]::ParameterName, 'Expect this transcript: the finished turns, joined, are compared word by word after normalization (case, punctuation, spacing; docs/guide.md#assertions)')
            [CompletionResult]::new('--expect-file', '--expect-file', [CompletionResultType]::ParameterName, 'Expect the transcript in FILE (UTF-8; line breaks count as spaces). With --split-channels, LABEL=FILE checks one side (repeat it for each side)')
            [CompletionResult]::new('--max-wer', '--max-wer', [CompletionResultType]::ParameterName, 'Word error rate allowed against --expect-text/--expect-file: word-level edits (substitutions + deletions + insertions) divided by the reference''s words. Default 0: every word must match after normalization')
            [CompletionResult]::new('--expect-turns', '--expect-turns', [CompletionResultType]::ParameterName, 'Expect exactly N turns (EndOfTurn, plus any turn left unconfirmed when the stream closed)')
            [CompletionResult]::new('--max-eot-latency-ms', '--max-eot-latency-ms', [CompletionResultType]::ParameterName, 'Fail when an EndOfTurn arrives more than MS milliseconds after the end of its turn''s audio was sent (wall time, at real-time pace; not with --fast)')
            [CompletionResult]::new('--pace', '--pace', [CompletionResultType]::ParameterName, 'Send audio FACTOR times faster than real time: 0.1 to 1000 (1 = real time, the default). Flux is built for live audio: its turn timers run on audio time, so results match real time, but Deepgram does not promise the same transcripts for bursts')
            [CompletionResult]::new('--provider', '--provider', [CompletionResultType]::ParameterName, 'Where Flux runs: Deepgram (/v2/listen), Cloudflare Workers AI (@cf/deepgram/flux) or an AWS SageMaker endpoint (--endpoint NAME); or Fireworks streaming ASR; or `local`, the offline recognizer inside flux (no key; docs/providers.md#local)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Send to this server instead. Deepgram: a base URL such as a `flux serve` address (ws://127.0.0.1:8787), a regional host (wss://api.eu.deepgram.com) or self-hosted Deepgram; `/v2/listen` is appended unless the path already ends with it. Cloudflare: the whole endpoint, used as given (your Worker, the REST URL, or an AI Gateway URL). Fireworks: the whole endpoint, used as given (e.g. a `flux serve` address with /v1/audio/transcriptions/streaming). SageMaker: the runtime''s https:// base (default from the region, or AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2)')
            [CompletionResult]::new('--api-key-file', '--api-key-file', [CompletionResultType]::ParameterName, 'Read the API key (Deepgram, Fireworks) or API token (Cloudflare) from this file instead of DEEPGRAM_API_KEY / CLOUDFLARE_API_TOKEN / FIREWORKS_API_KEY (keeps it out of `ps` and shell history)')
            [CompletionResult]::new('--access-token-file', '--access-token-file', [CompletionResultType]::ParameterName, 'Deepgram: read a temporary token (from /v1/auth/grant) from this file instead of DEEPGRAM_ACCESS_TOKEN; it is sent as `Authorization: Bearer`. With a key set too, the one set at the higher level (flag > environment > profile) is used, the token on a tie, and stderr says which')
            [CompletionResult]::new('--account-id', '--account-id', [CompletionResultType]::ParameterName, 'Cloudflare account id (default: CLOUDFLARE_ACCOUNT_ID)')
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Cloudflare: go through this AI Gateway (sends the token as cf-aig-authorization)')
            [CompletionResult]::new('--endpoint', '--endpoint', [CompletionResultType]::ParameterName, 'SageMaker: the name of the endpoint running Flux')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'SageMaker: the AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then the AWS profile''s region)')
            [CompletionResult]::new('--header', '--header', [CompletionResultType]::ParameterName, 'Add a header to the WebSocket request, e.g. the auth your own Worker or proxy wants; repeatable. Values are never printed')
            [CompletionResult]::new('--ca-cert', '--ca-cert', [CompletionResultType]::ParameterName, 'Also trust the CA certificate(s) in this PEM file for wss:// (a private CA, a TLS proxy); repeatable. Mozilla''s roots stay trusted; certificates are always verified')
            [CompletionResult]::new('--max-reconnects', '--max-reconnects', [CompletionResultType]::ParameterName, 'Reconnect at most N times after the connection drops, fails or stalls (the count resets after a minute of healthy audio); 0 never reconnects. The open turn''s audio is sent again, so no speech is lost')
            [CompletionResult]::new('--stall-timeout', '--stall-timeout', [CompletionResultType]::ParameterName, 'Reconnect when audio is flowing but the server has sent nothing for SECONDS (0.5 to 3600)')
            [CompletionResult]::new('--control', '--control', [CompletionResultType]::ParameterName, 'Read control messages from FILE (a FIFO works) while streaming: one JSON object per line, as Flux''s own messages ({"type":"Configure",...}, {"type":"ForceEndTurn"}, {"type":"CloseStream"} to finish), with an optional "at": SECONDS of audio to delay it until then. See docs/control.md')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'Flux model: flux-general-en (the default), or flux-general-multi for multilingual audio. Deepgram only (Cloudflare serves flux-general-en). Fireworks: fireworks-asr-large (v1, the default) or fireworks-asr-v2 (v2, preview)')
            [CompletionResult]::new('--sample-rate', '--sample-rate', [CompletionResultType]::ParameterName, 'Sample rate sent to Flux, in Hz: 8000, 16000, 24000, 44100 or 48000 (audio is resampled to it)')
            [CompletionResult]::new('--chunk-ms', '--chunk-ms', [CompletionResultType]::ParameterName, 'Audio per WebSocket message, in milliseconds: 10 to 1000 (Deepgram recommends 80)')
            [CompletionResult]::new('--eot-threshold', '--eot-threshold', [CompletionResultType]::ParameterName, 'End-of-turn confidence needed to end a turn (0.5 to 1.0; 1.0 leaves ends to --eot-timeout-ms). Server default 0.7')
            [CompletionResult]::new('--eager-eot-threshold', '--eager-eot-threshold', [CompletionResultType]::ParameterName, 'Confidence for EagerEndOfTurn events (0.3 to 0.9, at most --eot-threshold); enables EagerEndOfTurn and TurnResumed')
            [CompletionResult]::new('--eot-timeout-ms', '--eot-timeout-ms', [CompletionResultType]::ParameterName, 'End a turn after this much audio without speech, whatever the confidence (500 to 60000). Server default 5000')
            [CompletionResult]::new('--keyterm', '--keyterm', [CompletionResultType]::ParameterName, 'Boost recognition of a term or phrase; repeat for several')
            [CompletionResult]::new('--keyterm-file', '--keyterm-file', [CompletionResultType]::ParameterName, 'Read keyterms from FILE, one per line (blank lines and lines starting with # are skipped); added to --keyterm''s. Repeatable')
            [CompletionResult]::new('--language-hint', '--language-hint', [CompletionResultType]::ParameterName, 'Expected language for flux-general-multi (en, es, fr, de, hi, ru, pt, ja, it, nl); repeat for several')
            [CompletionResult]::new('--tag', '--tag', [CompletionResultType]::ParameterName, 'Usage-reporting label; repeat for several')
            [CompletionResult]::new('--redact', '--redact', [CompletionResultType]::ParameterName, 'Redact numbers from transcripts; repeat for several kinds')
            [CompletionResult]::new('--language', '--language', [CompletionResultType]::ParameterName, 'Fireworks: the spoken language, an ISO 639-1 code (en, de, es, ...; also yue, zh-hant, zh-hans); left out, Fireworks detects it')
            [CompletionResult]::new('--prompt', '--prompt', [CompletionResultType]::ParameterName, 'Fireworks: words or style to expect, e.g. "Um, here''s, uh, what was recorded." keeps fillers')
            [CompletionResult]::new('--temperature', '--temperature', [CompletionResultType]::ParameterName, 'Fireworks: decoding temperature, 0 to 1 (server default 0)')
            [CompletionResult]::new('--asr-model', '--asr-model', [CompletionResultType]::ParameterName, 'The model directory, as for `flux serve --asr-model` [default: $XDG_DATA_HOME/flux/models/moonshine-base-en, i.e. ~/.local/share/flux/models/moonshine-base-en; fetch it with scripts/fetch-model.sh]')
            [CompletionResult]::new('--asr-workers', '--asr-workers', [CompletionResultType]::ParameterName, 'Decoding threads, each with its own copy of the model (about 150 MB each), shared by every stream of the run [default: 1, as for flux serve; one gives one real-time stream Updates at full cadence, two give a call''s two sides theirs on two cores]')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'What to print on stdout: `live` shows turns as they happen in the terminal (docs/live.md); `text` prints one line per finished turn; `jsonl` prints every event as one JSON object per line (docs/jsonl.md); `srt` and `vtt` print captions as turns finish (docs/captions.md). Default: live when stdout is a terminal, text otherwise')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in the live view and progress bar: auto (unless NO_COLOR is set and not empty, or TERM=dumb), always or never. Nothing else is ever coloured')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Use the config file''s [profile.NAME] on top of its [default] table')
            [CompletionResult]::new('--split-channels', '--split-channels', [CompletionResultType]::ParameterName, 'Stream each channel of the input on its own (picked, not mixed): one connection per channel, one timeline ordered by audio time, every line naming its side')
            [CompletionResult]::new('--fast', '--fast', [CompletionResultType]::ParameterName, 'Send audio as fast as the connection takes it (for tests and batch jobs; same caveat as --pace)')
            [CompletionResult]::new('--sagemaker-controls', '--sagemaker-controls', [CompletionResultType]::ParameterName, 'SageMaker: the endpoint''s container build takes ForceEndTurn and Configure, so send them. Without this flux ends the last turn with silence and refuses Configure, which some builds answer by ending the session')
            [CompletionResult]::new('--allow-insecure', '--allow-insecure', [CompletionResultType]::ParameterName, 'Allow plain ws:// to a host that is not loopback (the audio and API key travel unencrypted)')
            [CompletionResult]::new('--no-force-end-turn', '--no-force-end-turn', [CompletionResultType]::ParameterName, 'The server has no ForceEndTurn (self-hosted Deepgram): end the stream by sending silence until the last turn ends instead. Implied for Cloudflare')
            [CompletionResult]::new('--numerals', '--numerals', [CompletionResultType]::ParameterName, 'Write numbers as digits ("25" rather than "twenty five")')
            [CompletionResult]::new('--profanity-filter', '--profanity-filter', [CompletionResultType]::ParameterName, 'Mask profanity in transcripts')
            [CompletionResult]::new('--mip-opt-out', '--mip-opt-out', [CompletionResultType]::ParameterName, 'Opt out of Deepgram''s Model Improvement Program')
            [CompletionResult]::new('--text', '--text', [CompletionResultType]::ParameterName, 'Shorthand for --format text')
            [CompletionResult]::new('--jsonl', '--jsonl', [CompletionResultType]::ParameterName, 'Shorthand for --format jsonl')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print no status or warnings on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print no status or warnings on stderr (errors are still printed)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'flux;listen' {
            [CompletionResult]::new('--device', '--device', [CompletionResultType]::ParameterName, 'Input device for --mic: an id from `flux devices`, or a unique part of an id or description (case-insensitive). Give it twice (or more) for one side per device (e.g. a headset and a monitor of what the computer plays), named by --channel-labels')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Stop after this many seconds of audio (more than 0, at most 86400), counted in audio frames from the device or stdin, not wall-clock time: caps a live capture')
            [CompletionResult]::new('--save-audio', '--save-audio', [CompletionResultType]::ParameterName, 'Also write the audio exactly as sent (mono 16-bit PCM at --sample-rate, after conditioning) to this WAV file; `flux file FILE.wav` replays the session')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'Sample rate of the PCM on stdin, in Hz: 1000 to 384000 (required with --stdin)')
            [CompletionResult]::new('--channels', '--channels', [CompletionResultType]::ParameterName, 'Interleaved channels in the PCM on stdin; they are mixed down to mono')
            [CompletionResult]::new('--sample-format', '--sample-format', [CompletionResultType]::ParameterName, 'Sample format of the PCM on stdin')
            [CompletionResult]::new('--channel-labels', '--channel-labels', [CompletionResultType]::ParameterName, 'Names for the sides, one per channel (or per --device), comma-separated (default ch0,ch1,...): letters, digits, `-`, `_` and `.`')
            [CompletionResult]::new('--pace', '--pace', [CompletionResultType]::ParameterName, 'Send audio FACTOR times faster than real time: 0.1 to 1000 (1 = real time, the default). Flux is built for live audio: its turn timers run on audio time, so results match real time, but Deepgram does not promise the same transcripts for bursts')
            [CompletionResult]::new('--provider', '--provider', [CompletionResultType]::ParameterName, 'Where Flux runs: Deepgram (/v2/listen), Cloudflare Workers AI (@cf/deepgram/flux) or an AWS SageMaker endpoint (--endpoint NAME); or Fireworks streaming ASR; or `local`, the offline recognizer inside flux (no key; docs/providers.md#local)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Send to this server instead. Deepgram: a base URL such as a `flux serve` address (ws://127.0.0.1:8787), a regional host (wss://api.eu.deepgram.com) or self-hosted Deepgram; `/v2/listen` is appended unless the path already ends with it. Cloudflare: the whole endpoint, used as given (your Worker, the REST URL, or an AI Gateway URL). Fireworks: the whole endpoint, used as given (e.g. a `flux serve` address with /v1/audio/transcriptions/streaming). SageMaker: the runtime''s https:// base (default from the region, or AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2)')
            [CompletionResult]::new('--api-key-file', '--api-key-file', [CompletionResultType]::ParameterName, 'Read the API key (Deepgram, Fireworks) or API token (Cloudflare) from this file instead of DEEPGRAM_API_KEY / CLOUDFLARE_API_TOKEN / FIREWORKS_API_KEY (keeps it out of `ps` and shell history)')
            [CompletionResult]::new('--access-token-file', '--access-token-file', [CompletionResultType]::ParameterName, 'Deepgram: read a temporary token (from /v1/auth/grant) from this file instead of DEEPGRAM_ACCESS_TOKEN; it is sent as `Authorization: Bearer`. With a key set too, the one set at the higher level (flag > environment > profile) is used, the token on a tie, and stderr says which')
            [CompletionResult]::new('--account-id', '--account-id', [CompletionResultType]::ParameterName, 'Cloudflare account id (default: CLOUDFLARE_ACCOUNT_ID)')
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Cloudflare: go through this AI Gateway (sends the token as cf-aig-authorization)')
            [CompletionResult]::new('--endpoint', '--endpoint', [CompletionResultType]::ParameterName, 'SageMaker: the name of the endpoint running Flux')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'SageMaker: the AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then the AWS profile''s region)')
            [CompletionResult]::new('--header', '--header', [CompletionResultType]::ParameterName, 'Add a header to the WebSocket request, e.g. the auth your own Worker or proxy wants; repeatable. Values are never printed')
            [CompletionResult]::new('--ca-cert', '--ca-cert', [CompletionResultType]::ParameterName, 'Also trust the CA certificate(s) in this PEM file for wss:// (a private CA, a TLS proxy); repeatable. Mozilla''s roots stay trusted; certificates are always verified')
            [CompletionResult]::new('--max-reconnects', '--max-reconnects', [CompletionResultType]::ParameterName, 'Reconnect at most N times after the connection drops, fails or stalls (the count resets after a minute of healthy audio); 0 never reconnects. The open turn''s audio is sent again, so no speech is lost')
            [CompletionResult]::new('--stall-timeout', '--stall-timeout', [CompletionResultType]::ParameterName, 'Reconnect when audio is flowing but the server has sent nothing for SECONDS (0.5 to 3600)')
            [CompletionResult]::new('--control', '--control', [CompletionResultType]::ParameterName, 'Read control messages from FILE (a FIFO works) while streaming: one JSON object per line, as Flux''s own messages ({"type":"Configure",...}, {"type":"ForceEndTurn"}, {"type":"CloseStream"} to finish), with an optional "at": SECONDS of audio to delay it until then. See docs/control.md')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'Flux model: flux-general-en (the default), or flux-general-multi for multilingual audio. Deepgram only (Cloudflare serves flux-general-en). Fireworks: fireworks-asr-large (v1, the default) or fireworks-asr-v2 (v2, preview)')
            [CompletionResult]::new('--sample-rate', '--sample-rate', [CompletionResultType]::ParameterName, 'Sample rate sent to Flux, in Hz: 8000, 16000, 24000, 44100 or 48000 (audio is resampled to it)')
            [CompletionResult]::new('--chunk-ms', '--chunk-ms', [CompletionResultType]::ParameterName, 'Audio per WebSocket message, in milliseconds: 10 to 1000 (Deepgram recommends 80)')
            [CompletionResult]::new('--eot-threshold', '--eot-threshold', [CompletionResultType]::ParameterName, 'End-of-turn confidence needed to end a turn (0.5 to 1.0; 1.0 leaves ends to --eot-timeout-ms). Server default 0.7')
            [CompletionResult]::new('--eager-eot-threshold', '--eager-eot-threshold', [CompletionResultType]::ParameterName, 'Confidence for EagerEndOfTurn events (0.3 to 0.9, at most --eot-threshold); enables EagerEndOfTurn and TurnResumed')
            [CompletionResult]::new('--eot-timeout-ms', '--eot-timeout-ms', [CompletionResultType]::ParameterName, 'End a turn after this much audio without speech, whatever the confidence (500 to 60000). Server default 5000')
            [CompletionResult]::new('--keyterm', '--keyterm', [CompletionResultType]::ParameterName, 'Boost recognition of a term or phrase; repeat for several')
            [CompletionResult]::new('--keyterm-file', '--keyterm-file', [CompletionResultType]::ParameterName, 'Read keyterms from FILE, one per line (blank lines and lines starting with # are skipped); added to --keyterm''s. Repeatable')
            [CompletionResult]::new('--language-hint', '--language-hint', [CompletionResultType]::ParameterName, 'Expected language for flux-general-multi (en, es, fr, de, hi, ru, pt, ja, it, nl); repeat for several')
            [CompletionResult]::new('--tag', '--tag', [CompletionResultType]::ParameterName, 'Usage-reporting label; repeat for several')
            [CompletionResult]::new('--redact', '--redact', [CompletionResultType]::ParameterName, 'Redact numbers from transcripts; repeat for several kinds')
            [CompletionResult]::new('--language', '--language', [CompletionResultType]::ParameterName, 'Fireworks: the spoken language, an ISO 639-1 code (en, de, es, ...; also yue, zh-hant, zh-hans); left out, Fireworks detects it')
            [CompletionResult]::new('--prompt', '--prompt', [CompletionResultType]::ParameterName, 'Fireworks: words or style to expect, e.g. "Um, here''s, uh, what was recorded." keeps fillers')
            [CompletionResult]::new('--temperature', '--temperature', [CompletionResultType]::ParameterName, 'Fireworks: decoding temperature, 0 to 1 (server default 0)')
            [CompletionResult]::new('--asr-model', '--asr-model', [CompletionResultType]::ParameterName, 'The model directory, as for `flux serve --asr-model` [default: $XDG_DATA_HOME/flux/models/moonshine-base-en, i.e. ~/.local/share/flux/models/moonshine-base-en; fetch it with scripts/fetch-model.sh]')
            [CompletionResult]::new('--asr-workers', '--asr-workers', [CompletionResultType]::ParameterName, 'Decoding threads, each with its own copy of the model (about 150 MB each), shared by every stream of the run [default: 1, as for flux serve; one gives one real-time stream Updates at full cadence, two give a call''s two sides theirs on two cores]')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'What to print on stdout: `live` shows turns as they happen in the terminal (docs/live.md); `text` prints one line per finished turn; `jsonl` prints every event as one JSON object per line (docs/jsonl.md); `srt` and `vtt` print captions as turns finish (docs/captions.md). Default: live when stdout is a terminal, text otherwise')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in the live view and progress bar: auto (unless NO_COLOR is set and not empty, or TERM=dumb), always or never. Nothing else is ever coloured')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Use the config file''s [profile.NAME] on top of its [default] table')
            [CompletionResult]::new('--stdin', '--stdin', [CompletionResultType]::ParameterName, 'Read raw PCM from stdin until end of input (e.g. from sox, ffmpeg or arecord)')
            [CompletionResult]::new('--mic', '--mic', [CompletionResultType]::ParameterName, 'Capture from a microphone (the default input device, or --device) until Ctrl-C or --duration. Ctrl-C once finishes the last turn and exits 0; twice exits at once')
            [CompletionResult]::new('--split-channels', '--split-channels', [CompletionResultType]::ParameterName, 'Stream each channel of the input on its own (picked, not mixed): one connection per channel, one timeline ordered by audio time, every line naming its side')
            [CompletionResult]::new('--fast', '--fast', [CompletionResultType]::ParameterName, 'Send audio as fast as the connection takes it (for tests and batch jobs; same caveat as --pace)')
            [CompletionResult]::new('--sagemaker-controls', '--sagemaker-controls', [CompletionResultType]::ParameterName, 'SageMaker: the endpoint''s container build takes ForceEndTurn and Configure, so send them. Without this flux ends the last turn with silence and refuses Configure, which some builds answer by ending the session')
            [CompletionResult]::new('--allow-insecure', '--allow-insecure', [CompletionResultType]::ParameterName, 'Allow plain ws:// to a host that is not loopback (the audio and API key travel unencrypted)')
            [CompletionResult]::new('--no-force-end-turn', '--no-force-end-turn', [CompletionResultType]::ParameterName, 'The server has no ForceEndTurn (self-hosted Deepgram): end the stream by sending silence until the last turn ends instead. Implied for Cloudflare')
            [CompletionResult]::new('--numerals', '--numerals', [CompletionResultType]::ParameterName, 'Write numbers as digits ("25" rather than "twenty five")')
            [CompletionResult]::new('--profanity-filter', '--profanity-filter', [CompletionResultType]::ParameterName, 'Mask profanity in transcripts')
            [CompletionResult]::new('--mip-opt-out', '--mip-opt-out', [CompletionResultType]::ParameterName, 'Opt out of Deepgram''s Model Improvement Program')
            [CompletionResult]::new('--text', '--text', [CompletionResultType]::ParameterName, 'Shorthand for --format text')
            [CompletionResult]::new('--jsonl', '--jsonl', [CompletionResultType]::ParameterName, 'Shorthand for --format jsonl')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print no status or warnings on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print no status or warnings on stderr (errors are still printed)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'flux;replay' {
            [CompletionResult]::new('--pace', '--pace', [CompletionResultType]::ParameterName, 'Replay FACTOR times faster than recorded (0.1 to 1000; default 1, the recorded pace)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'What to print on stdout: `live` shows turns as they happen in the terminal (docs/live.md); `text` prints one line per finished turn; `jsonl` prints every event as one JSON object per line (docs/jsonl.md); `srt` and `vtt` print captions as turns finish (docs/captions.md). Default: live when stdout is a terminal, text otherwise')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in the live view and progress bar: auto (unless NO_COLOR is set and not empty, or TERM=dumb), always or never. Nothing else is ever coloured')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Use the config file''s [profile.NAME] on top of its [default] table')
            [CompletionResult]::new('--fast', '--fast', [CompletionResultType]::ParameterName, 'Render everything at once')
            [CompletionResult]::new('--text', '--text', [CompletionResultType]::ParameterName, 'Shorthand for --format text')
            [CompletionResult]::new('--jsonl', '--jsonl', [CompletionResultType]::ParameterName, 'Shorthand for --format jsonl')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print no status or warnings on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print no status or warnings on stderr (errors are still printed)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'flux;devices' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Use the config file''s [profile.NAME] on top of its [default] table')
            [CompletionResult]::new('--jsonl', '--jsonl', [CompletionResultType]::ParameterName, 'One JSON object per device: {id, description, default, channels, sample_rates, default_config: {sample_format, sample_rate, channels}}')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'flux;serve' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen on; port 0 picks a free port (the address is printed on stdout)')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'Require this API key (`Authorization: Token KEY`, or `Bearer KEY` on Cloudflare routes, or the raw KEY on Fireworks routes; on the SageMaker front end, the SigV4 access key id); /v2/listen also takes `Bearer TOKEN` with a token from POST /v1/auth/grant')
            [CompletionResult]::new('--script', '--script', [CompletionResultType]::ParameterName, 'Transcript script: one line per turn, revealed word by word as the turn''s speech goes on')
            [CompletionResult]::new('--replay', '--replay', [CompletionResultType]::ParameterName, 'Answer every connection with the server messages of a session recorded with `flux ... --jsonl`, each sent when the incoming audio reaches its time (docs/serve.md)')
            [CompletionResult]::new('--log', '--log', [CompletionResultType]::ParameterName, 'Append one JSON line per thing received (handshakes, audio frames, control messages, closes) to FILE')
            [CompletionResult]::new('--fault', '--fault', [CompletionResultType]::ParameterName, 'Inject a fault, e.g. `drop:at=2.5,conn=1`, `reject:status=429`, `delay:ms=200`; repeatable (docs/serve.md lists them all)')
            [CompletionResult]::new('--asr', '--asr', [CompletionResultType]::ParameterName, 'Recognize the words with a local model instead of a script: `moonshine` (Moonshine base-en on the CPU; fetch it once with scripts/fetch-model.sh)')
            [CompletionResult]::new('--asr-model', '--asr-model', [CompletionResultType]::ParameterName, 'The model directory for --asr [default: $XDG_DATA_HOME/flux/models/moonshine-base-en, i.e. ~/.local/share/flux/models/moonshine-base-en]')
            [CompletionResult]::new('--asr-workers', '--asr-workers', [CompletionResultType]::ParameterName, 'Decoding threads for --asr, each with its own copy of the model (about 150 MB each); streams share them')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Close a connection that has received no audio for SECONDS, as Deepgram does (a fatal `Error` NET-0001, then close 1011), so keep-alive logic can be tested; 0 never closes')
            [CompletionResult]::new('--sagemaker-listen', '--sagemaker-listen', [CompletionResultType]::ParameterName, 'Also serve AWS SageMaker''s bidirectional stream (HTTPS, HTTP/2, a certificate made at start) on this address; its https:// URL is printed on stdout after the ws:// one')
            [CompletionResult]::new('--sagemaker-ca', '--sagemaker-ca', [CompletionResultType]::ParameterName, 'Write the SageMaker front end''s CA certificate (PEM) to FILE, for clients to trust (`flux --ca-cert FILE`, `AWS_CA_BUNDLE=FILE`)')
            [CompletionResult]::new('--sagemaker-session-cap', '--sagemaker-session-cap', [CompletionResultType]::ParameterName, 'End each SageMaker stream after SECONDS of audio with a ModelStreamError, as SageMaker ends streams at its 30-minute cap (audio time, so tests are repeatable)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Use the config file''s [profile.NAME] on top of its [default] table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'flux;load' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Concurrent streams, 1 to 100000: each its own connection, paced in real time')
            [CompletionResult]::new('--streams', '--streams', [CompletionResultType]::ParameterName, 'Concurrent streams, 1 to 100000: each its own connection, paced in real time')
            [CompletionResult]::new('--ramp', '--ramp', [CompletionResultType]::ParameterName, 'Start the streams evenly over this many seconds (0 to 3600; default 0: all at once)')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Each stream sends this many seconds of audio, looping its recordings (more than 0, at most 86400)')
            [CompletionResult]::new('--loops', '--loops', [CompletionResultType]::ParameterName, 'Each stream plays its recordings this many times (default 1)')
            [CompletionResult]::new('--assert-p95-eot-ms', '--assert-p95-eot-ms', [CompletionResultType]::ParameterName, 'Exit 7 when the 95th percentile of end-of-turn latency over all streams is above MS milliseconds (or no turn ended at all)')
            [CompletionResult]::new('--assert-errors', '--assert-errors', [CompletionResultType]::ParameterName, 'Exit 7 when more than N errors were counted (refused handshakes, drops, unexpected closes, server Error messages, stalls, failed streams); failed streams then do not decide the exit status themselves')
            [CompletionResult]::new('--provider', '--provider', [CompletionResultType]::ParameterName, 'Where Flux runs: Deepgram (/v2/listen), Cloudflare Workers AI (@cf/deepgram/flux) or an AWS SageMaker endpoint (--endpoint NAME); or Fireworks streaming ASR; or `local`, the offline recognizer inside flux (no key; docs/providers.md#local)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Send to this server instead. Deepgram: a base URL such as a `flux serve` address (ws://127.0.0.1:8787), a regional host (wss://api.eu.deepgram.com) or self-hosted Deepgram; `/v2/listen` is appended unless the path already ends with it. Cloudflare: the whole endpoint, used as given (your Worker, the REST URL, or an AI Gateway URL). Fireworks: the whole endpoint, used as given (e.g. a `flux serve` address with /v1/audio/transcriptions/streaming). SageMaker: the runtime''s https:// base (default from the region, or AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2)')
            [CompletionResult]::new('--api-key-file', '--api-key-file', [CompletionResultType]::ParameterName, 'Read the API key (Deepgram, Fireworks) or API token (Cloudflare) from this file instead of DEEPGRAM_API_KEY / CLOUDFLARE_API_TOKEN / FIREWORKS_API_KEY (keeps it out of `ps` and shell history)')
            [CompletionResult]::new('--access-token-file', '--access-token-file', [CompletionResultType]::ParameterName, 'Deepgram: read a temporary token (from /v1/auth/grant) from this file instead of DEEPGRAM_ACCESS_TOKEN; it is sent as `Authorization: Bearer`. With a key set too, the one set at the higher level (flag > environment > profile) is used, the token on a tie, and stderr says which')
            [CompletionResult]::new('--account-id', '--account-id', [CompletionResultType]::ParameterName, 'Cloudflare account id (default: CLOUDFLARE_ACCOUNT_ID)')
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Cloudflare: go through this AI Gateway (sends the token as cf-aig-authorization)')
            [CompletionResult]::new('--endpoint', '--endpoint', [CompletionResultType]::ParameterName, 'SageMaker: the name of the endpoint running Flux')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'SageMaker: the AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then the AWS profile''s region)')
            [CompletionResult]::new('--header', '--header', [CompletionResultType]::ParameterName, 'Add a header to the WebSocket request, e.g. the auth your own Worker or proxy wants; repeatable. Values are never printed')
            [CompletionResult]::new('--ca-cert', '--ca-cert', [CompletionResultType]::ParameterName, 'Also trust the CA certificate(s) in this PEM file for wss:// (a private CA, a TLS proxy); repeatable. Mozilla''s roots stay trusted; certificates are always verified')
            [CompletionResult]::new('--max-reconnects', '--max-reconnects', [CompletionResultType]::ParameterName, 'Reconnect at most N times after the connection drops, fails or stalls (the count resets after a minute of healthy audio); 0 never reconnects. The open turn''s audio is sent again, so no speech is lost')
            [CompletionResult]::new('--stall-timeout', '--stall-timeout', [CompletionResultType]::ParameterName, 'Reconnect when audio is flowing but the server has sent nothing for SECONDS (0.5 to 3600)')
            [CompletionResult]::new('--control', '--control', [CompletionResultType]::ParameterName, 'Read control messages from FILE (a FIFO works) while streaming: one JSON object per line, as Flux''s own messages ({"type":"Configure",...}, {"type":"ForceEndTurn"}, {"type":"CloseStream"} to finish), with an optional "at": SECONDS of audio to delay it until then. See docs/control.md')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'Flux model: flux-general-en (the default), or flux-general-multi for multilingual audio. Deepgram only (Cloudflare serves flux-general-en). Fireworks: fireworks-asr-large (v1, the default) or fireworks-asr-v2 (v2, preview)')
            [CompletionResult]::new('--sample-rate', '--sample-rate', [CompletionResultType]::ParameterName, 'Sample rate sent to Flux, in Hz: 8000, 16000, 24000, 44100 or 48000 (audio is resampled to it)')
            [CompletionResult]::new('--chunk-ms', '--chunk-ms', [CompletionResultType]::ParameterName, 'Audio per WebSocket message, in milliseconds: 10 to 1000 (Deepgram recommends 80)')
            [CompletionResult]::new('--eot-threshold', '--eot-threshold', [CompletionResultType]::ParameterName, 'End-of-turn confidence needed to end a turn (0.5 to 1.0; 1.0 leaves ends to --eot-timeout-ms). Server default 0.7')
            [CompletionResult]::new('--eager-eot-threshold', '--eager-eot-threshold', [CompletionResultType]::ParameterName, 'Confidence for EagerEndOfTurn events (0.3 to 0.9, at most --eot-threshold); enables EagerEndOfTurn and TurnResumed')
            [CompletionResult]::new('--eot-timeout-ms', '--eot-timeout-ms', [CompletionResultType]::ParameterName, 'End a turn after this much audio without speech, whatever the confidence (500 to 60000). Server default 5000')
            [CompletionResult]::new('--keyterm', '--keyterm', [CompletionResultType]::ParameterName, 'Boost recognition of a term or phrase; repeat for several')
            [CompletionResult]::new('--keyterm-file', '--keyterm-file', [CompletionResultType]::ParameterName, 'Read keyterms from FILE, one per line (blank lines and lines starting with # are skipped); added to --keyterm''s. Repeatable')
            [CompletionResult]::new('--language-hint', '--language-hint', [CompletionResultType]::ParameterName, 'Expected language for flux-general-multi (en, es, fr, de, hi, ru, pt, ja, it, nl); repeat for several')
            [CompletionResult]::new('--tag', '--tag', [CompletionResultType]::ParameterName, 'Usage-reporting label; repeat for several')
            [CompletionResult]::new('--redact', '--redact', [CompletionResultType]::ParameterName, 'Redact numbers from transcripts; repeat for several kinds')
            [CompletionResult]::new('--language', '--language', [CompletionResultType]::ParameterName, 'Fireworks: the spoken language, an ISO 639-1 code (en, de, es, ...; also yue, zh-hant, zh-hans); left out, Fireworks detects it')
            [CompletionResult]::new('--prompt', '--prompt', [CompletionResultType]::ParameterName, 'Fireworks: words or style to expect, e.g. "Um, here''s, uh, what was recorded." keeps fillers')
            [CompletionResult]::new('--temperature', '--temperature', [CompletionResultType]::ParameterName, 'Fireworks: decoding temperature, 0 to 1 (server default 0)')
            [CompletionResult]::new('--asr-model', '--asr-model', [CompletionResultType]::ParameterName, 'The model directory, as for `flux serve --asr-model` [default: $XDG_DATA_HOME/flux/models/moonshine-base-en, i.e. ~/.local/share/flux/models/moonshine-base-en; fetch it with scripts/fetch-model.sh]')
            [CompletionResult]::new('--asr-workers', '--asr-workers', [CompletionResultType]::ParameterName, 'Decoding threads, each with its own copy of the model (about 150 MB each), shared by every stream of the run [default: 1, as for flux serve; one gives one real-time stream Updates at full cadence, two give a call''s two sides theirs on two cores]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Use the config file''s [profile.NAME] on top of its [default] table')
            [CompletionResult]::new('--jsonl', '--jsonl', [CompletionResultType]::ParameterName, 'Write the report as JSON lines (one per stream, then the summary) instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No start line or live status on stderr (the report and errors are still written)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No start line or live status on stderr (the report and errors are still written)')
            [CompletionResult]::new('--sagemaker-controls', '--sagemaker-controls', [CompletionResultType]::ParameterName, 'SageMaker: the endpoint''s container build takes ForceEndTurn and Configure, so send them. Without this flux ends the last turn with silence and refuses Configure, which some builds answer by ending the session')
            [CompletionResult]::new('--allow-insecure', '--allow-insecure', [CompletionResultType]::ParameterName, 'Allow plain ws:// to a host that is not loopback (the audio and API key travel unencrypted)')
            [CompletionResult]::new('--no-force-end-turn', '--no-force-end-turn', [CompletionResultType]::ParameterName, 'The server has no ForceEndTurn (self-hosted Deepgram): end the stream by sending silence until the last turn ends instead. Implied for Cloudflare')
            [CompletionResult]::new('--numerals', '--numerals', [CompletionResultType]::ParameterName, 'Write numbers as digits ("25" rather than "twenty five")')
            [CompletionResult]::new('--profanity-filter', '--profanity-filter', [CompletionResultType]::ParameterName, 'Mask profanity in transcripts')
            [CompletionResult]::new('--mip-opt-out', '--mip-opt-out', [CompletionResultType]::ParameterName, 'Opt out of Deepgram''s Model Improvement Program')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'flux;completions' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Use the config file''s [profile.NAME] on top of its [default] table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'flux;man' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Use the config file''s [profile.NAME] on top of its [default] table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'flux;doctor' {
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Give each network step (DNS, TCP, TLS, the handshake) this long: 0.1 to 300 seconds')
            [CompletionResult]::new('--provider', '--provider', [CompletionResultType]::ParameterName, 'Where Flux runs: Deepgram (/v2/listen), Cloudflare Workers AI (@cf/deepgram/flux) or an AWS SageMaker endpoint (--endpoint NAME); or Fireworks streaming ASR; or `local`, the offline recognizer inside flux (no key; docs/providers.md#local)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Send to this server instead. Deepgram: a base URL such as a `flux serve` address (ws://127.0.0.1:8787), a regional host (wss://api.eu.deepgram.com) or self-hosted Deepgram; `/v2/listen` is appended unless the path already ends with it. Cloudflare: the whole endpoint, used as given (your Worker, the REST URL, or an AI Gateway URL). Fireworks: the whole endpoint, used as given (e.g. a `flux serve` address with /v1/audio/transcriptions/streaming). SageMaker: the runtime''s https:// base (default from the region, or AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2)')
            [CompletionResult]::new('--api-key-file', '--api-key-file', [CompletionResultType]::ParameterName, 'Read the API key (Deepgram, Fireworks) or API token (Cloudflare) from this file instead of DEEPGRAM_API_KEY / CLOUDFLARE_API_TOKEN / FIREWORKS_API_KEY (keeps it out of `ps` and shell history)')
            [CompletionResult]::new('--access-token-file', '--access-token-file', [CompletionResultType]::ParameterName, 'Deepgram: read a temporary token (from /v1/auth/grant) from this file instead of DEEPGRAM_ACCESS_TOKEN; it is sent as `Authorization: Bearer`. With a key set too, the one set at the higher level (flag > environment > profile) is used, the token on a tie, and stderr says which')
            [CompletionResult]::new('--account-id', '--account-id', [CompletionResultType]::ParameterName, 'Cloudflare account id (default: CLOUDFLARE_ACCOUNT_ID)')
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Cloudflare: go through this AI Gateway (sends the token as cf-aig-authorization)')
            [CompletionResult]::new('--endpoint', '--endpoint', [CompletionResultType]::ParameterName, 'SageMaker: the name of the endpoint running Flux')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'SageMaker: the AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then the AWS profile''s region)')
            [CompletionResult]::new('--header', '--header', [CompletionResultType]::ParameterName, 'Add a header to the WebSocket request, e.g. the auth your own Worker or proxy wants; repeatable. Values are never printed')
            [CompletionResult]::new('--ca-cert', '--ca-cert', [CompletionResultType]::ParameterName, 'Also trust the CA certificate(s) in this PEM file for wss:// (a private CA, a TLS proxy); repeatable. Mozilla''s roots stay trusted; certificates are always verified')
            [CompletionResult]::new('--max-reconnects', '--max-reconnects', [CompletionResultType]::ParameterName, 'Reconnect at most N times after the connection drops, fails or stalls (the count resets after a minute of healthy audio); 0 never reconnects. The open turn''s audio is sent again, so no speech is lost')
            [CompletionResult]::new('--stall-timeout', '--stall-timeout', [CompletionResultType]::ParameterName, 'Reconnect when audio is flowing but the server has sent nothing for SECONDS (0.5 to 3600)')
            [CompletionResult]::new('--control', '--control', [CompletionResultType]::ParameterName, 'Read control messages from FILE (a FIFO works) while streaming: one JSON object per line, as Flux''s own messages ({"type":"Configure",...}, {"type":"ForceEndTurn"}, {"type":"CloseStream"} to finish), with an optional "at": SECONDS of audio to delay it until then. See docs/control.md')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'Flux model: flux-general-en (the default), or flux-general-multi for multilingual audio. Deepgram only (Cloudflare serves flux-general-en). Fireworks: fireworks-asr-large (v1, the default) or fireworks-asr-v2 (v2, preview)')
            [CompletionResult]::new('--sample-rate', '--sample-rate', [CompletionResultType]::ParameterName, 'Sample rate sent to Flux, in Hz: 8000, 16000, 24000, 44100 or 48000 (audio is resampled to it)')
            [CompletionResult]::new('--chunk-ms', '--chunk-ms', [CompletionResultType]::ParameterName, 'Audio per WebSocket message, in milliseconds: 10 to 1000 (Deepgram recommends 80)')
            [CompletionResult]::new('--eot-threshold', '--eot-threshold', [CompletionResultType]::ParameterName, 'End-of-turn confidence needed to end a turn (0.5 to 1.0; 1.0 leaves ends to --eot-timeout-ms). Server default 0.7')
            [CompletionResult]::new('--eager-eot-threshold', '--eager-eot-threshold', [CompletionResultType]::ParameterName, 'Confidence for EagerEndOfTurn events (0.3 to 0.9, at most --eot-threshold); enables EagerEndOfTurn and TurnResumed')
            [CompletionResult]::new('--eot-timeout-ms', '--eot-timeout-ms', [CompletionResultType]::ParameterName, 'End a turn after this much audio without speech, whatever the confidence (500 to 60000). Server default 5000')
            [CompletionResult]::new('--keyterm', '--keyterm', [CompletionResultType]::ParameterName, 'Boost recognition of a term or phrase; repeat for several')
            [CompletionResult]::new('--keyterm-file', '--keyterm-file', [CompletionResultType]::ParameterName, 'Read keyterms from FILE, one per line (blank lines and lines starting with # are skipped); added to --keyterm''s. Repeatable')
            [CompletionResult]::new('--language-hint', '--language-hint', [CompletionResultType]::ParameterName, 'Expected language for flux-general-multi (en, es, fr, de, hi, ru, pt, ja, it, nl); repeat for several')
            [CompletionResult]::new('--tag', '--tag', [CompletionResultType]::ParameterName, 'Usage-reporting label; repeat for several')
            [CompletionResult]::new('--redact', '--redact', [CompletionResultType]::ParameterName, 'Redact numbers from transcripts; repeat for several kinds')
            [CompletionResult]::new('--language', '--language', [CompletionResultType]::ParameterName, 'Fireworks: the spoken language, an ISO 639-1 code (en, de, es, ...; also yue, zh-hant, zh-hans); left out, Fireworks detects it')
            [CompletionResult]::new('--prompt', '--prompt', [CompletionResultType]::ParameterName, 'Fireworks: words or style to expect, e.g. "Um, here''s, uh, what was recorded." keeps fillers')
            [CompletionResult]::new('--temperature', '--temperature', [CompletionResultType]::ParameterName, 'Fireworks: decoding temperature, 0 to 1 (server default 0)')
            [CompletionResult]::new('--asr-model', '--asr-model', [CompletionResultType]::ParameterName, 'The model directory, as for `flux serve --asr-model` [default: $XDG_DATA_HOME/flux/models/moonshine-base-en, i.e. ~/.local/share/flux/models/moonshine-base-en; fetch it with scripts/fetch-model.sh]')
            [CompletionResult]::new('--asr-workers', '--asr-workers', [CompletionResultType]::ParameterName, 'Decoding threads, each with its own copy of the model (about 150 MB each), shared by every stream of the run [default: 1, as for flux serve; one gives one real-time stream Updates at full cadence, two give a call''s two sides theirs on two cores]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Use the config file''s [profile.NAME] on top of its [default] table')
            [CompletionResult]::new('--jsonl', '--jsonl', [CompletionResultType]::ParameterName, 'One JSON object per check ({type, check, ok, detail, fix, ...}) and a summary line')
            [CompletionResult]::new('--sagemaker-controls', '--sagemaker-controls', [CompletionResultType]::ParameterName, 'SageMaker: the endpoint''s container build takes ForceEndTurn and Configure, so send them. Without this flux ends the last turn with silence and refuses Configure, which some builds answer by ending the session')
            [CompletionResult]::new('--allow-insecure', '--allow-insecure', [CompletionResultType]::ParameterName, 'Allow plain ws:// to a host that is not loopback (the audio and API key travel unencrypted)')
            [CompletionResult]::new('--no-force-end-turn', '--no-force-end-turn', [CompletionResultType]::ParameterName, 'The server has no ForceEndTurn (self-hosted Deepgram): end the stream by sending silence until the last turn ends instead. Implied for Cloudflare')
            [CompletionResult]::new('--numerals', '--numerals', [CompletionResultType]::ParameterName, 'Write numbers as digits ("25" rather than "twenty five")')
            [CompletionResult]::new('--profanity-filter', '--profanity-filter', [CompletionResultType]::ParameterName, 'Mask profanity in transcripts')
            [CompletionResult]::new('--mip-opt-out', '--mip-opt-out', [CompletionResultType]::ParameterName, 'Opt out of Deepgram''s Model Improvement Program')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'flux;config' {
            [CompletionResult]::new('--pace', '--pace', [CompletionResultType]::ParameterName, 'Send audio FACTOR times faster than real time: 0.1 to 1000 (1 = real time, the default). Flux is built for live audio: its turn timers run on audio time, so results match real time, but Deepgram does not promise the same transcripts for bursts')
            [CompletionResult]::new('--provider', '--provider', [CompletionResultType]::ParameterName, 'Where Flux runs: Deepgram (/v2/listen), Cloudflare Workers AI (@cf/deepgram/flux) or an AWS SageMaker endpoint (--endpoint NAME); or Fireworks streaming ASR; or `local`, the offline recognizer inside flux (no key; docs/providers.md#local)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Send to this server instead. Deepgram: a base URL such as a `flux serve` address (ws://127.0.0.1:8787), a regional host (wss://api.eu.deepgram.com) or self-hosted Deepgram; `/v2/listen` is appended unless the path already ends with it. Cloudflare: the whole endpoint, used as given (your Worker, the REST URL, or an AI Gateway URL). Fireworks: the whole endpoint, used as given (e.g. a `flux serve` address with /v1/audio/transcriptions/streaming). SageMaker: the runtime''s https:// base (default from the region, or AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2)')
            [CompletionResult]::new('--api-key-file', '--api-key-file', [CompletionResultType]::ParameterName, 'Read the API key (Deepgram, Fireworks) or API token (Cloudflare) from this file instead of DEEPGRAM_API_KEY / CLOUDFLARE_API_TOKEN / FIREWORKS_API_KEY (keeps it out of `ps` and shell history)')
            [CompletionResult]::new('--access-token-file', '--access-token-file', [CompletionResultType]::ParameterName, 'Deepgram: read a temporary token (from /v1/auth/grant) from this file instead of DEEPGRAM_ACCESS_TOKEN; it is sent as `Authorization: Bearer`. With a key set too, the one set at the higher level (flag > environment > profile) is used, the token on a tie, and stderr says which')
            [CompletionResult]::new('--account-id', '--account-id', [CompletionResultType]::ParameterName, 'Cloudflare account id (default: CLOUDFLARE_ACCOUNT_ID)')
            [CompletionResult]::new('--gateway', '--gateway', [CompletionResultType]::ParameterName, 'Cloudflare: go through this AI Gateway (sends the token as cf-aig-authorization)')
            [CompletionResult]::new('--endpoint', '--endpoint', [CompletionResultType]::ParameterName, 'SageMaker: the name of the endpoint running Flux')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'SageMaker: the AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then the AWS profile''s region)')
            [CompletionResult]::new('--header', '--header', [CompletionResultType]::ParameterName, 'Add a header to the WebSocket request, e.g. the auth your own Worker or proxy wants; repeatable. Values are never printed')
            [CompletionResult]::new('--ca-cert', '--ca-cert', [CompletionResultType]::ParameterName, 'Also trust the CA certificate(s) in this PEM file for wss:// (a private CA, a TLS proxy); repeatable. Mozilla''s roots stay trusted; certificates are always verified')
            [CompletionResult]::new('--max-reconnects', '--max-reconnects', [CompletionResultType]::ParameterName, 'Reconnect at most N times after the connection drops, fails or stalls (the count resets after a minute of healthy audio); 0 never reconnects. The open turn''s audio is sent again, so no speech is lost')
            [CompletionResult]::new('--stall-timeout', '--stall-timeout', [CompletionResultType]::ParameterName, 'Reconnect when audio is flowing but the server has sent nothing for SECONDS (0.5 to 3600)')
            [CompletionResult]::new('--control', '--control', [CompletionResultType]::ParameterName, 'Read control messages from FILE (a FIFO works) while streaming: one JSON object per line, as Flux''s own messages ({"type":"Configure",...}, {"type":"ForceEndTurn"}, {"type":"CloseStream"} to finish), with an optional "at": SECONDS of audio to delay it until then. See docs/control.md')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'Flux model: flux-general-en (the default), or flux-general-multi for multilingual audio. Deepgram only (Cloudflare serves flux-general-en). Fireworks: fireworks-asr-large (v1, the default) or fireworks-asr-v2 (v2, preview)')
            [CompletionResult]::new('--sample-rate', '--sample-rate', [CompletionResultType]::ParameterName, 'Sample rate sent to Flux, in Hz: 8000, 16000, 24000, 44100 or 48000 (audio is resampled to it)')
            [CompletionResult]::new('--chunk-ms', '--chunk-ms', [CompletionResultType]::ParameterName, 'Audio per WebSocket message, in milliseconds: 10 to 1000 (Deepgram recommends 80)')
            [CompletionResult]::new('--eot-threshold', '--eot-threshold', [CompletionResultType]::ParameterName, 'End-of-turn confidence needed to end a turn (0.5 to 1.0; 1.0 leaves ends to --eot-timeout-ms). Server default 0.7')
            [CompletionResult]::new('--eager-eot-threshold', '--eager-eot-threshold', [CompletionResultType]::ParameterName, 'Confidence for EagerEndOfTurn events (0.3 to 0.9, at most --eot-threshold); enables EagerEndOfTurn and TurnResumed')
            [CompletionResult]::new('--eot-timeout-ms', '--eot-timeout-ms', [CompletionResultType]::ParameterName, 'End a turn after this much audio without speech, whatever the confidence (500 to 60000). Server default 5000')
            [CompletionResult]::new('--keyterm', '--keyterm', [CompletionResultType]::ParameterName, 'Boost recognition of a term or phrase; repeat for several')
            [CompletionResult]::new('--keyterm-file', '--keyterm-file', [CompletionResultType]::ParameterName, 'Read keyterms from FILE, one per line (blank lines and lines starting with # are skipped); added to --keyterm''s. Repeatable')
            [CompletionResult]::new('--language-hint', '--language-hint', [CompletionResultType]::ParameterName, 'Expected language for flux-general-multi (en, es, fr, de, hi, ru, pt, ja, it, nl); repeat for several')
            [CompletionResult]::new('--tag', '--tag', [CompletionResultType]::ParameterName, 'Usage-reporting label; repeat for several')
            [CompletionResult]::new('--redact', '--redact', [CompletionResultType]::ParameterName, 'Redact numbers from transcripts; repeat for several kinds')
            [CompletionResult]::new('--language', '--language', [CompletionResultType]::ParameterName, 'Fireworks: the spoken language, an ISO 639-1 code (en, de, es, ...; also yue, zh-hant, zh-hans); left out, Fireworks detects it')
            [CompletionResult]::new('--prompt', '--prompt', [CompletionResultType]::ParameterName, 'Fireworks: words or style to expect, e.g. "Um, here''s, uh, what was recorded." keeps fillers')
            [CompletionResult]::new('--temperature', '--temperature', [CompletionResultType]::ParameterName, 'Fireworks: decoding temperature, 0 to 1 (server default 0)')
            [CompletionResult]::new('--asr-model', '--asr-model', [CompletionResultType]::ParameterName, 'The model directory, as for `flux serve --asr-model` [default: $XDG_DATA_HOME/flux/models/moonshine-base-en, i.e. ~/.local/share/flux/models/moonshine-base-en; fetch it with scripts/fetch-model.sh]')
            [CompletionResult]::new('--asr-workers', '--asr-workers', [CompletionResultType]::ParameterName, 'Decoding threads, each with its own copy of the model (about 150 MB each), shared by every stream of the run [default: 1, as for flux serve; one gives one real-time stream Updates at full cadence, two give a call''s two sides theirs on two cores]')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'What to print on stdout: `live` shows turns as they happen in the terminal (docs/live.md); `text` prints one line per finished turn; `jsonl` prints every event as one JSON object per line (docs/jsonl.md); `srt` and `vtt` print captions as turns finish (docs/captions.md). Default: live when stdout is a terminal, text otherwise')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in the live view and progress bar: auto (unless NO_COLOR is set and not empty, or TERM=dumb), always or never. Nothing else is ever coloured')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The config file (default: $XDG_CONFIG_HOME/flux/config.toml, else ~/.config/flux/config.toml; used by file, listen and config). See docs/configuration.md')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Use the config file''s [profile.NAME] on top of its [default] table')
            [CompletionResult]::new('--fast', '--fast', [CompletionResultType]::ParameterName, 'Send audio as fast as the connection takes it (for tests and batch jobs; same caveat as --pace)')
            [CompletionResult]::new('--sagemaker-controls', '--sagemaker-controls', [CompletionResultType]::ParameterName, 'SageMaker: the endpoint''s container build takes ForceEndTurn and Configure, so send them. Without this flux ends the last turn with silence and refuses Configure, which some builds answer by ending the session')
            [CompletionResult]::new('--allow-insecure', '--allow-insecure', [CompletionResultType]::ParameterName, 'Allow plain ws:// to a host that is not loopback (the audio and API key travel unencrypted)')
            [CompletionResult]::new('--no-force-end-turn', '--no-force-end-turn', [CompletionResultType]::ParameterName, 'The server has no ForceEndTurn (self-hosted Deepgram): end the stream by sending silence until the last turn ends instead. Implied for Cloudflare')
            [CompletionResult]::new('--numerals', '--numerals', [CompletionResultType]::ParameterName, 'Write numbers as digits ("25" rather than "twenty five")')
            [CompletionResult]::new('--profanity-filter', '--profanity-filter', [CompletionResultType]::ParameterName, 'Mask profanity in transcripts')
            [CompletionResult]::new('--mip-opt-out', '--mip-opt-out', [CompletionResultType]::ParameterName, 'Opt out of Deepgram''s Model Improvement Program')
            [CompletionResult]::new('--text', '--text', [CompletionResultType]::ParameterName, 'Shorthand for --format text')
            [CompletionResult]::new('--jsonl', '--jsonl', [CompletionResultType]::ParameterName, 'Shorthand for --format jsonl')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print no status or warnings on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print no status or warnings on stderr (errors are still printed)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'flux;help' {
            [CompletionResult]::new('file', 'file', [CompletionResultType]::ParameterValue, 'Stream WAV files through Flux (each its own stream), paced like live audio by default')
            [CompletionResult]::new('listen', 'listen', [CompletionResultType]::ParameterValue, 'Stream live audio through Flux: a microphone (--mic) or raw PCM on stdin (--stdin)')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Re-render a session recorded with --jsonl (text, captions or the live view), at its recorded pace or faster, without any server')
            [CompletionResult]::new('devices', 'devices', [CompletionResultType]::ParameterValue, 'List audio input devices (ids for `flux listen --mic --device`)')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run a local Flux-compatible server, for offline development and CI')
            [CompletionResult]::new('load', 'load', [CompletionResultType]::ParameterValue, 'Load-test a Flux deployment: N concurrent real-time streams looping WAV recordings')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print flux''s manual page (roff) on stdout, e.g. `flux man | man -l -`')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check what flux needs: audio input, credentials, DNS, TCP, TLS and a real handshake')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Print the effective settings (flags, environment, profile, defaults) and where each came from; credentials are never shown')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'flux;help;file' {
            break
        }
        'flux;help;listen' {
            break
        }
        'flux;help;replay' {
            break
        }
        'flux;help;devices' {
            break
        }
        'flux;help;serve' {
            break
        }
        'flux;help;load' {
            break
        }
        'flux;help;completions' {
            break
        }
        'flux;help;man' {
            break
        }
        'flux;help;doctor' {
            break
        }
        'flux;help;config' {
            break
        }
        'flux;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
