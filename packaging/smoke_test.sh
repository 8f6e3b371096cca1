#!/usr/bin/env bash
# Smoke test of the frozen app (bash packaging/build_app.sh first), run from a scratch folder with its own XDG
# folders so that it needs neither the checkout nor the venv and leaves nothing in the user's home:
#  1. the frozen `foley generate` on the demo clip the build ships: two WAVs and a muxed MP4, checked (PyAV of
#     the venv when there is one, else the stdlib `wave` module and the MP4's boxes);
#  2. the frozen editor under Qt's offscreen platform: `--smoke-test` opens the clip, generates, accepts, exports,
#     saves and quits; exit code 0, its report says ok, and its log has no traceback.
#   bash packaging/smoke_test.sh [APP_DIR]      (default dist/foley-editor; KEEP=1 keeps the scratch folder)
set -euo pipefail
cd "$(dirname "$0")/.."
APP=$(cd "${1:-${APP:-dist/foley-editor}}" && pwd)
[ -x "$APP/foley-editor" ] || { echo "smoke_test: no frozen build in $APP (bash packaging/build_app.sh)" >&2; exit 1; }
PY=python3
[ -x .venv/bin/python ] && PY=$PWD/.venv/bin/python
work=$(mktemp -d "${TMPDIR:-/tmp}/foley-smoke.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
export XDG_CONFIG_HOME="$work/config" XDG_DATA_HOME="$work/data" XDG_CACHE_HOME="$work/cache"
export QT_QPA_PLATFORM=offscreen
video="$APP/_internal/resources/demo/test_walk_00058.mp4"
cd "$work"

echo "smoke_test: 1/2 frozen 'foley generate' in $work" >&2
timeout 300 nice -n 10 "$APP/foley" generate "$video" --start 1 --candidates 2 --steps 4 --out cli \
  --mux cli/muxed.mp4 -q > cli.out 2> cli.err || { cat cli.err >&2; echo "smoke_test: FAILED (foley generate)" >&2; exit 1; }
"$PY" - cli <<'PY'
import sys, wave
from pathlib import Path

out = Path(sys.argv[1])
wavs = sorted(out.glob("*.wav"))
assert len(wavs) == 2, f"expected 2 WAVs, got {wavs}"
for w in wavs:
    with wave.open(str(w)) as f:
        secs = f.getnframes() / f.getframerate()
        assert f.getframerate() == 48000 and abs(secs - 8.192) < 0.01, (w.name, f.getframerate(), secs)
        pcm = f.readframes(f.getnframes())
        assert any(pcm), f"{w.name} is silent"
mp4 = out / "muxed.mp4"
try:
    import av
except ImportError:  # no PyAV here: the container's boxes at least
    head = mp4.read_bytes()
    assert head[4:8] == b"ftyp" and b"soun" in head and b"vide" in head, "muxed.mp4 lacks a video or sound track"
    print(f"smoke_test: {len(wavs)} WAVs at 48 kHz, {mp4.name} has video and sound tracks (no PyAV: boxes only)",
          file=sys.stderr)
else:
    with av.open(str(mp4)) as c:
        kinds = sorted(s.type for s in c.streams)
        assert kinds == ["audio", "video"], kinds
        frames = sum(f.samples for f in c.decode(audio=0))
    assert frames > 0.9 * 8.192 * 48000, frames  # at least the generated segment (the clip is longer)
    print(f"smoke_test: {len(wavs)} WAVs at 48 kHz, {mp4.name}: {kinds}, {frames} audio samples decoded (PyAV)",
          file=sys.stderr)
PY

echo "smoke_test: 2/2 frozen editor, offscreen: open, generate, accept, export, save, quit" >&2
rc=0
timeout 300 nice -n 10 "$APP/foley-editor" "$video" --smoke-test editor --smoke-steps 4 > editor.log 2>&1 || rc=$?
if [ "$rc" != 0 ] || ! grep -q '"ok": true' editor/smoke-test.json 2>/dev/null || grep -q Traceback editor.log; then
  tail -40 editor.log >&2
  echo "smoke_test: FAILED (editor exit code $rc; report: $(cat editor/smoke-test.json 2>/dev/null || echo none))" >&2
  exit 1
fi
for f in test_walk_00058_foley.mp4 test_walk_00058_foley.wav test_walk_00058.foleyproj; do
  [ -s "editor/$f" ] || { echo "smoke_test: FAILED (the editor wrote no $f)" >&2; exit 1; }
done
"$PY" -c 'import json, sys; print("smoke_test: editor steps (s):", json.load(open(sys.argv[1]))["seconds"])' \
  editor/smoke-test.json >&2
echo "smoke_test: passed" >&2
