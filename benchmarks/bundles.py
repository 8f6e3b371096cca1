"""End-to-end generation time of two or more bundles in one run, alternated (machines are noisy: compare ratios).

    python -m benchmarks.bundles resources/models/default runs/hits-s1/bundle [--candidates 4] [--repeats 3]

Each bundle is loaded once (ONNX Runtime, its default precision) and generates `--candidates` takes of the demo
clip's segment at 1 s, `--repeats` times after one warm-up, the bundles taking turns; the best run of each is
reported with its stage timings (hits detection included for a bundle with a detector: `hits="auto"`, as the CLI
and the editor use it). Prints a Markdown table and, with `--json`, writes the raw numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VIDEO = ROOT / "resources" / "demo" / "bbb_excerpt.mp4"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bundles", description=__doc__.split("\n\n")[0])
    ap.add_argument("bundles", nargs="+", help="bundle folders")
    ap.add_argument("--video", default=str(VIDEO))
    ap.add_argument("--start", type=float, default=1.0)
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None, help="also write the raw results here")
    args = ap.parse_args(argv)

    from engine import load_engine

    engines = {b: load_engine(b, backend="onnx") for b in args.bundles}
    runs: dict[str, list[dict[str, float]]] = {b: [] for b in args.bundles}
    load = os.getloadavg()[0]
    for rep in range(args.repeats + 1):
        for b, eng in engines.items():
            t0 = time.perf_counter()
            res = eng.generate(args.video, args.start, candidates=args.candidates, seed=rep)
            wall = time.perf_counter() - t0
            if rep:  # the first round is the warm-up (and fills the hit detector's feature cache: cleared below)
                runs[b].append({"wall": wall, **res.timings})
            eng.motion_cache.clear()  # every timed run computes its motion features, as a new segment would
    rows = ["| bundle | hits | end to end (s) | video + features | hits | denoise | decode | vocode |",
            "|---|---|---|---|---|---|---|---|"]
    best = {}
    for b, eng in engines.items():
        r = min(runs[b], key=lambda x: x["wall"])
        best[b] = r
        rows.append(f"| {eng.manifest.name} | {'yes' if eng.takes_hits else 'no'} | {r['wall']:.2f} | "
                    f"{r.get('video', 0) + r.get('features', 0):.2f} | {r.get('hits', 0):.2f} | {r['denoise']:.2f} | "
                    f"{r['decode']:.2f} | {r['vocode']:.2f} |")
    first = best[args.bundles[0]]["wall"]
    print(f"{args.candidates} candidates, best of {args.repeats}, load average {load:.2f} -> "
          f"{os.getloadavg()[0]:.2f}")
    print("\n".join(rows))
    for b in args.bundles[1:]:
        print(f"{engines[b].manifest.name} / {engines[args.bundles[0]].manifest.name}: "
              f"{best[b]['wall'] / first:.3f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "best": best, "load": load}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
