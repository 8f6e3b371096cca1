"""The command line of `python -m benchmarks.generation` (its options are described in the package's docstring)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.generation.common import DOC, ROOT
from benchmarks.generation.orchestrate import GUIDANCE_INTERVAL, SHIPPED_ROWS, run_all, shipped_rows
from benchmarks.generation.report import rates_report, report, shipped_table, write_doc
from benchmarks.generation.workers import WORKERS


def main(argv: list[str] | None = None) -> int:
    import benchmarks.generation as package  # its docstring is the usage

    p = argparse.ArgumentParser(prog="python -m benchmarks.generation", description=package.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="preset T only, 1 repeat, 1 peer step; writes no doc")
    p.add_argument("--presets", nargs="+", default=None, choices=["T", "S", "B"], help="default: T S B")
    p.add_argument("--steps", type=int, default=25, help="sampler steps of a generation (default 25)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per figure, best kept (default 2)")
    p.add_argument("--peer-steps", type=int, default=None, help="peer U-Net steps to time (default 2)")
    p.add_argument("--torch-presets", nargs="*", default=None, choices=["T", "S", "B"],
                   help="presets that also get the torch rows (default: all measured presets)")
    p.add_argument("--no-peer", action="store_true", help="skip the peer U-Net")
    p.add_argument("--rates", action="store_true",
                   help="only the shipped model at 16 and 48 kHz (4 candidates, int8, the same run); writes no doc")
    p.add_argument("--shipped", action="store_true",
                   help="only the shipped model's rows (the speed levers of issue #17 among them) in one run")
    p.add_argument("--bundle", default=None, help="a trained bundle to time as 'the default model' (default: the "
                                                  "shipped resources/models/default when present)")
    p.add_argument("--no-bundle", action="store_true", help="do not time the shipped default model")
    p.add_argument("--work", default=None, help="folder for the bundles (reused when present)")
    p.add_argument("--doc", default=None, help=f"markdown file to update (default {DOC.relative_to(ROOT)}; "
                                               "--quick writes none unless given)")
    p.add_argument("--json", default=None, help="also write the raw results here")
    p.add_argument("--report-only", default=None, metavar="JSON",
                   help="measure nothing: render the report (and --doc) from a --json file of an earlier run")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--args", default=None, help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    if opts.worker:
        print(json.dumps(WORKERS[opts.worker](json.loads(opts.args))))
        return 0
    opts.presets = opts.presets or (["T"] if opts.quick else ["T", "S", "B"])
    opts.torch_presets = opts.presets if opts.torch_presets is None else opts.torch_presets
    opts.repeats = opts.repeats or (1 if opts.quick else 2)
    opts.peer_steps = opts.peer_steps or (1 if opts.quick else 2)
    shipped = ROOT / "resources" / "models" / "default"
    if opts.no_bundle:
        opts.bundle = None
    elif opts.bundle is None and (shipped / "manifest.json").is_file():
        opts.bundle = str(shipped)
    if opts.shipped:
        if not opts.bundle:
            p.error("--shipped needs the shipped model or --bundle")
        shipped = shipped_rows(opts)
        print("\n".join(shipped_table(shipped)))
        if opts.json:
            Path(opts.json).write_text(json.dumps(shipped, indent=1, default=str))
        return 0
    if opts.rates:
        if not opts.bundle:
            p.error("--rates needs the shipped model or --bundle")
        rows = tuple(r for r in SHIPPED_ROWS if (r.precision, r.candidates, r.steps, r.interval, r.order, r.prepared)
                     == ("int8", 4, None, GUIDANCE_INTERVAL, 2, False))
        shipped = shipped_rows(opts, rows)
        print("\n".join(["| target | measured | goal | met |", "|---|---|---|---|", rates_report(shipped, opts.steps),
                         "", *shipped_table(shipped)]))
        if opts.json:
            Path(opts.json).write_text(json.dumps(shipped, indent=1, default=str))
        return 0
    res = json.loads(Path(opts.report_only).read_text()) if opts.report_only else run_all(opts)
    block = report(res)
    print(block)
    if opts.json and not opts.report_only:
        Path(opts.json).write_text(json.dumps(res, indent=1, default=str))
    doc = Path(opts.doc) if opts.doc else (None if opts.quick else DOC)
    if doc is not None:
        write_doc(doc, block)
        print(f"benchmark: wrote {doc}", file=sys.stderr)
    return 0
