#!/usr/bin/env bash
# The main job on the bundled material, offline: generate 4 Foley candidates for the demo excerpt and mux one.
# Uses the shipped default model (resources/models/default). Without it (a checkout that removed it), it builds the
# tests' tiny bundle with RANDOM weights and its ONNX graphs and says so: the pipeline runs end to end on ONNX
# Runtime (the backend `auto` picks for a bundle with graphs), the sound is noise.
set -euo pipefail
cd "$(dirname "$0")/.."
VIDEO=${1:-resources/demo/bbb_excerpt.mp4}
START=${2:-1.0}
OUT=${OUT:-foley_out}
bundle_args=()
if [ ! -f resources/models/default/manifest.json ]; then
  bundle=${BUNDLE:-$OUT/random-test-bundle}
  if [ ! -f "$bundle/manifest.json" ] || ! grep -q '"graphs"' "$bundle/manifest.json"; then
    echo "demo: resources/models/default is missing; building a RANDOM-weight test bundle with ONNX graphs in $bundle" >&2
    .venv/bin/python - "$bundle" <<'PY'
import sys
from pathlib import Path
from engine.nn.random_bundle import random_bundle
from engine.nn.export import export_onnx
from engine.spec import DIFF_FOLEY
if (Path(sys.argv[1]) / "manifest.json").is_file():  # a bundle from an older demo: add its ONNX graphs
    export_onnx(sys.argv[1])
else:
    random_bundle(sys.argv[1], spec=DIFF_FOLEY, preset="T", vocoder="vocos", onnx=True)
PY
  fi
  bundle_args=(--bundle "$bundle")
fi
.venv/bin/foley generate "$VIDEO" --start "$START" --candidates 4 --out "$OUT" \
  --mux "$OUT/$(basename "${VIDEO%.*}")_foley.mp4" --overwrite "${bundle_args[@]}"
