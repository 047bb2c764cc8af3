#!/usr/bin/env python3
"""Drive `flux serve` with the official Deepgram Python SDK, unchanged.

Usage (not run by `cargo test`; needs `pip install deepgram-sdk` and a built binary):

    python3 -m venv /tmp/dg && /tmp/dg/bin/pip install deepgram-sdk
    /tmp/dg/bin/python tests/sdk/deepgram_python_sdk.py target/debug/flux

It starts `flux serve --api-key KEY --script ...`, points the SDK's environment at it, streams
tests/fixtures/beckett.wav as linear16 in 80 ms frames, sends Configure, ForceEndTurn and
CloseStream through the SDK's own methods, and checks the typed messages the SDK hands back.
Exit status 0 means the SDK worked unchanged against the emulator.
"""

import os
import subprocess
import sys
import tempfile
import threading
import wave

from deepgram import DeepgramClient
from deepgram.environment import DeepgramClientEnvironment

KEY = "sdk-test-key"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> int:
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/debug/flux")
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "turns.txt")
        with open(script, "w") as f:
            f.write("Ever tried. Ever failed.\nNo matter. Try again.\nFail again.\nFail better.\n")
        server = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--api-key", KEY, "--script", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            url = server.stdout.readline().strip()
            return run(url)
        finally:
            server.terminate()
            server.wait(timeout=10)


def run(url: str) -> int:
    env = DeepgramClientEnvironment(
        base=url.replace("ws://", "http://"), production=url, agent=url, agent_rest=url
    )
    client = DeepgramClient(api_key=KEY, environment=env)
    with wave.open(os.path.join(ROOT, "tests/fixtures/beckett.wav")) as w:
        rate = w.getframerate()
        pcm = w.readframes(w.getnframes())
    received = []
    with client.listen.v2.connect(
        model="flux-general-en", encoding="linear16", sample_rate=str(rate), eager_eot_threshold="0.5"
    ) as socket:
        def reader():
            try:
                for message in socket:
                    received.append(message)
            except Exception as exc:  # the close after CloseStream ends iteration
                received.append(exc)

        t = threading.Thread(target=reader)
        t.start()
        socket.send_configure({"type": "Configure", "thresholds": {"eot_threshold": 0.8}, "keyterms": ["Beckett"]})
        frame = rate // 100 * 8 * 2
        for i in range(0, len(pcm), frame):
            socket.send_media(pcm[i : i + frame])
        socket.send_media(b"\x00" * (rate * 2))
        socket.send_force_end_turn()
        socket.send_close_stream()
        t.join(timeout=30)

    kinds = [type(m).__name__ for m in received]
    print("message classes:", sorted(set(kinds)))
    turns = [m for m in received if getattr(m, "type", None) == "TurnInfo"]
    ends = [m for m in turns if m.event == "EndOfTurn"]
    for m in ends:
        print(f"turn {m.turn_index}: {m.transcript!r} trigger={getattr(m, 'trigger', None)} end={m.audio_window_end}")
    ok = (
        getattr(received[0], "type", None) == "Connected"
        and any(getattr(m, "type", None) == "ConfigureSuccess" for m in received)
        and any(getattr(m, "type", None) == "Warning" for m in received)  # ForceEndTurn after the last turn
        and [m.transcript for m in ends][:3] == ["Ever tried. Ever failed.", "No matter. Try again.", "Fail again."]
        and any(m.event == "EagerEndOfTurn" for m in turns)
    )
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
