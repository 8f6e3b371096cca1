"""Generation speed on this machine: per stage, torch vs ONNX, presets, peak memory, GEMM peaks and a peer.

    python -m benchmarks.generation            # the full run (~10 min on 2 cores); rewrites docs/benchmarks.md
    python -m benchmarks.generation --quick    # preset T only, fewer repeats (~3 min); prints, writes no doc
    python -m benchmarks.generation --repeats 1 --torch-presets T   # what the committed doc ran (shared machine)
    python -m benchmarks.generation --rates    # the shipped model at 16 vs 48 kHz output only (~1 min); no doc

Every measurement runs in its own subprocess (`--worker`), so that each figure has a clean peak memory and no
runtime's threads disturb another's: an ONNX worker never imports torch. All models have RANDOM weights (speed
only, never quality) and the production shapes: the DIFF_FOLEY spec (4x16x64 latent, 256 tokens, 32 video frames,
128x512 mel, 131072 samples). The bundle per preset is: the MDSGen denoiser preset, the EfficientNet-Lite0 frame
encoder with its projection, a small mono VAE and the default Vocos-style vocoder (see `common.MODEL`).

Timings are the best of `--repeats` runs after one warm-up (the machine is shared: the best run is the one least
disturbed); the load average before and after the run is recorded beside the figures.

The package: `common` (constants, the model, torch-free helpers), `workers` (the measurements, one process each),
`orchestrate` (the subprocesses and the rows of a run), `report` (the Markdown block), `cli` (the options).
"""

from benchmarks.generation.cli import main
from benchmarks.generation.common import (
    BEGIN,
    DEFAULT_PRESET,
    DOC,
    END,
    MODEL,
    ROOT,
    START,
    TARGETS,
    VAE_SIZES,
    VIDEO,
    VOCODER_SIZES,
    machine,
    peak_rss_bytes,
)
from benchmarks.generation.orchestrate import GUIDANCE_INTERVAL, SHIPPED_ROWS, run_all, run_worker, shipped_rows
from benchmarks.generation.report import rates_report, report, shipped_table, write_doc
from benchmarks.generation.workers import WORKERS

__all__ = [
    "BEGIN", "DEFAULT_PRESET", "DOC", "END", "GUIDANCE_INTERVAL", "MODEL", "ROOT", "SHIPPED_ROWS", "START", "TARGETS",
    "VAE_SIZES", "VIDEO", "VOCODER_SIZES", "WORKERS", "machine", "main", "peak_rss_bytes", "rates_report", "report",
    "run_all", "run_worker", "shipped_rows", "shipped_table", "write_doc",
]
