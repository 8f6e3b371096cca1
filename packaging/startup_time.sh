#!/usr/bin/env bash
# Start-up time of the editor, frozen (dist/foley-editor) and from the venv: when the main window was first
# painted and when the model was ready (loaded in the background), in seconds from the launch. Each is started
# RUNS times (default 3; the first run of each also pays the cold file cache) under Qt's offscreen platform with
# scratch settings; prints every run and the median.
#   bash packaging/startup_time.sh [frozen|venv|both]
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-both}
RUNS=${RUNS:-3}
APP=${APP:-dist/foley-editor}
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
work=$(mktemp -d "${TMPDIR:-/tmp}/foley-startup.XXXXXX")
trap 'rm -rf "$work"' EXIT
export XDG_CONFIG_HOME="$work/config" XDG_DATA_HOME="$work/data" XDG_CACHE_HOME="$work/cache"
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}

measure() {  # label, command...
  local label=$1; shift
  : > "$work/$label.jsonl"
  for i in $(seq "$RUNS"); do
    FOLEY_STARTUP_T0=$(date +%s.%N) timeout 120 "$@" --measure-startup --no-recovery \
      --settings "$work/settings.ini" 2> "$work/$label.$i.log" | tail -1 >> "$work/$label.jsonl" || {
      tail -20 "$work/$label.$i.log" >&2; echo "startup_time: $label run $i failed" >&2; exit 1; }
  done
  "$PY" - "$label" "$work/$label.jsonl" <<'PY'
import json, statistics, sys
label, rows = sys.argv[1], [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
for key in ("window_shown_s", "engine_ready_s"):
    vals = [r.get(key) for r in rows]
    if None in vals:
        sys.exit(f"startup_time: {label}: {key} missing in {rows}")
    print(f"{label:7s} {key:15s} median {statistics.median(vals):5.2f} s   runs {', '.join(f'{v:.2f}' for v in vals)}")
PY
}

case "$which" in frozen|both)
  [ -x "$APP/foley-editor" ] || { echo "startup_time: no frozen build in $APP (bash packaging/build_app.sh)" >&2; exit 1; }
  measure frozen "$APP/foley-editor" ;;
esac
case "$which" in venv|both) measure venv "$PY" -m foley_app ;; esac
