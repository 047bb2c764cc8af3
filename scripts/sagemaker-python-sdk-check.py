#!/usr/bin/env python3
"""An official AWS client other than flux against `flux serve --sagemaker-listen` (issue 15).

Runs the AWS SDK for Python's `aws-sdk-sagemaker-runtime-http2` (with its awscrt HTTP/2
transport, which SageMaker's stream needs) unchanged against the emulator: the only
configuration is the endpoint URL, static test keys and trust in the emulator's CA. It starts
`flux serve` itself, streams tests/fixtures/two_cities.wav as BINARY payload parts in 80 ms
frames, ends with silence and CloseStream (UTF8), reads until the service ends the response
stream, and checks that every EndOfTurn transcript is the script's, in order, and that the
container received the audio and CloseStream. Exit status 0 means the SDK worked unchanged.

usage: PYTHON sagemaker-python-sdk-check.py [FLUX_BINARY]
needs Python >= 3.12 (the SDK's own requirement) and, pinned as scripts/test.sh installs them,
`pip install 'aws-sdk-sagemaker-runtime-http2==0.12.0' 'awscrt==0.32.2'`.

Why this once stalled after 8 audio frames: the emulator announced hyper's 1 MiB HTTP/2
stream window in its SETTINGS; awscrt sometimes starts sending before it reads them and keeps
the default 64 KiB window for the stream, while the server, believing the client has 1 MiB,
sends a WINDOW_UPDATE only after 512 KiB. Eight 7,680-byte frames (plus their envelopes) are
just under 64 KiB. The emulator now keeps the default window (src/serve/sagemaker.rs).
And why closing the input once failed with AWS_ERROR_HTTP_STREAM_HAS_COMPLETED: awscrt sends
the end envelope and END_STREAM in separate frames; the emulator dropped the request body
after the envelope, so hyper reset the stream before END_STREAM went out. It now reads the
body to its end.
"""

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import wave

from awscrt import io as crt_io
from aws_sdk_sagemaker_runtime_http2.client import AsyncSageMakerRuntimeHTTP2Client
from aws_sdk_sagemaker_runtime_http2.config import AsyncSageMakerRuntimeHTTP2Config
from aws_sdk_sagemaker_runtime_http2.models import (
    InvokeEndpointWithBidirectionalStreamInput,
    ModelStreamError,
    RequestPayloadPart,
    RequestStreamEventPayloadPart,
    ResponseStreamEventPayloadPart,
)
from smithy_http.aio.crt import AWSCRTHTTPClient, AWSCRTHTTPClientConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAV = os.path.join(ROOT, "tests/fixtures/two_cities.wav")
SCRIPT = os.path.join(ROOT, "tests/fixtures/two_cities.txt")
# The whole exchange (44 s of audio sent as fast as the stream takes it) takes a few seconds;
# this bounds a hang, such as the stall described above.
TIMEOUT_SECS = 120


class TrustingClient(AWSCRTHTTPClient):
    """The SDK's own awscrt transport, trusting one extra CA (the emulator's)."""

    def __init__(self, ca_path: str) -> None:
        super().__init__(client_config=AWSCRTHTTPClientConfig(force_http_2=True))
        options = crt_io.TlsContextOptions()
        options.override_default_trust_store_from_path(ca_filepath=ca_path)
        self._tls_ctx = crt_io.ClientTlsContext(options)


async def stream_file(url: str, ca: str) -> list[str]:
    """Streams the WAV through the SDK; returns the EndOfTurn transcripts in order."""
    with wave.open(WAV, "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, "16-bit mono WAV"
        rate = w.getframerate()
        pcm = w.readframes(w.getnframes())
    frame = rate * 2 * 80 // 1000
    config = await AsyncSageMakerRuntimeHTTP2Config.resolve(
        endpoint_uri=url,
        region="us-east-1",
        aws_access_key_id="AKIDPYTHONCHECK",
        aws_secret_access_key="python-check-secret",
        transport=TrustingClient(ca),
    )
    client = AsyncSageMakerRuntimeHTTP2Client(config=config)
    stream = await client.invoke_endpoint_with_bidirectional_stream(
        input=InvokeEndpointWithBidirectionalStreamInput(
            endpoint_name="my-flux",
            model_invocation_path="v2/listen",
            model_query_string=f"model=flux-general-en&encoding=linear16&sample_rate={rate}",
        )
    )

    def part(data: bytes, kind: str) -> RequestStreamEventPayloadPart:
        return RequestStreamEventPayloadPart(value=RequestPayloadPart(bytes_=data, data_type=kind))

    async def send() -> None:
        for at in range(0, len(pcm), frame):
            await stream.input_stream.send(part(pcm[at : at + frame], "BINARY"))
        # Silence ends the last turn (the container may not take ForceEndTurn).
        for _ in range(3000 // 80):
            await stream.input_stream.send(part(bytes(frame), "BINARY"))
        await stream.input_stream.send(part(b'{"type":"CloseStream"}', "UTF8"))

    sender = asyncio.create_task(send())
    _, output = await stream.await_output()
    transcripts = []
    try:
        async for event in output:
            if isinstance(event, ResponseStreamEventPayloadPart):
                message = json.loads(event.value.bytes_)
                if message.get("type") == "TurnInfo" and message.get("event") == "EndOfTurn":
                    transcripts.append(message["transcript"])
    except ModelStreamError:
        # The container's close after CloseStream may arrive as a ModelStreamError (AWS
        # does not document which): after CloseStream it is the normal end.
        if not sender.done():
            raise
    await sender
    await stream.input_stream.close()
    return transcripts


def main() -> int:
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/debug/flux")
    with tempfile.TemporaryDirectory() as tmp:
        ca = os.path.join(tmp, "ca.pem")
        log = os.path.join(tmp, "serve.jsonl")
        server = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--sagemaker-listen", "127.0.0.1:0",
             "--sagemaker-ca", ca, "--script", SCRIPT, "--log", log],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            server.stdout.readline()  # the ws:// URL
            url = server.stdout.readline().strip()
            if not url.startswith("https://"):
                print(f"FAILED: flux serve printed no SageMaker URL (got {url!r})")
                return 1
            try:
                got = asyncio.run(asyncio.wait_for(stream_file(url, ca), TIMEOUT_SECS))
            except TimeoutError:
                print(f"FAILED: the SDK's stream did not finish within {TIMEOUT_SECS}s")
                return 1
        finally:
            server.terminate()
            server.wait(timeout=10)
        with open(log) as f:
            entries = [json.loads(line) for line in f]
    with open(SCRIPT) as f:
        expected = [line.strip() for line in f if line.strip()]
    for i, text in enumerate(got):
        print(f"turn {i}: {text}")
    controls = [e["message"].get("type") for e in entries if e["kind"] == "control"]
    audio = sum(e.get("bytes", 0) for e in entries if e["kind"] == "audio")
    problems = []
    if got != expected:
        problems.append(f"the transcripts differ from the script's {len(expected)} lines")
    if controls != ["CloseStream"]:
        problems.append(f"the container got control messages {controls}, not [CloseStream]")
    if audio < os.path.getsize(WAV) - 1000:
        problems.append(f"the container got {audio} bytes of audio, less than the file")
    if problems:
        print("FAILED: " + "; ".join(problems))
        return 1
    print(f"OK: the AWS SDK for Python streamed {audio} bytes and got all {len(got)} turns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
