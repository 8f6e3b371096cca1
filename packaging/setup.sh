#!/usr/bin/env bash
# One-time set-up, offline apart from the package registries: a virtualenv in .venv with the CPU build of
# torch 2.13.0 (from the local wheel cache: seconds, not a multi-GB CUDA download) and the project with all
# extras. Idempotent: re-running after a change of pyproject.toml reinstalls, otherwise it returns at once.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
stamp="$VENV/.setup-stamp"
want=$(cat pyproject.toml packaging/setup.sh | sha256sum | cut -c1-16)

# System libraries: PortAudio for sounddevice (audition), xcb for Qt windows under X. Optional: the engine
# and the tests run without them (audition reports "no audio device"; tests use Qt's offscreen platform).
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  need=()
  for pkg in libportaudio2 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null) \
      || echo "setup: could not install ${need[*]} (optional); continuing" >&2
  fi
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/foley" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
"${pip[@]}" --upgrade pip
"${pip[@]}" torch==2.13.0            # first, so nothing below can pull another torch build
"${pip[@]}" -e '.[dev]'
# The evaluation's sound-effects embedding (training.sfx_embed). Without its dependencies on purpose: it pins
# numpy==1.23.0 and librosa==0.9.2, which have no wheels for this Python; it runs with ours.
"${pip[@]}" --no-deps aisfx==0.1.2
echo "$want" > "$stamp"
echo "setup: done ($("$VENV/bin/python" -c 'import torch, onnxruntime; print("torch", torch.__version__, "| onnxruntime", onnxruntime.__version__)'))"
