"""Compare `training.evaluate` runs of one bundle that differ only in a setting (the speed levers of issue #17).

    python -m training.compare_evals --base EVAL/base [--noise EVAL/base-seed1] EVAL/a EVAL/b ...

Each argument is an evaluation folder (its metrics.json). The table has one row per run: the sampler setting
(solver order, steps, guidance interval, the share of the denoiser's work), the generated condition's headline
metrics and their difference from `--base`. `--noise` names a run of the base settings with other seeds: its
difference from the base is the seed-to-seed spread, and a run "holds" quality when no metric is worse than the base
by more than that spread (or by the floor in `FLOORS`, whichever is larger; FAD and accuracies on 100 clips move by
a few units between seeds). The runs must be of the same bundle, clips and candidates; that is checked.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# metric -> (label, higher is better, percentage, smallest spread counted as noise)
METRICS: dict[str, tuple[str, bool, bool, float]] = {
    "onset_acc": ("onset acc @0.1s", True, True, 0.01),
    "onset_ap": ("onset AP", True, False, 0.01),
    "category": ("category acc", True, True, 0.02),
    "family": ("family acc", True, True, 0.02),
    "fad": ("FAD (AI-SFX)", False, False, 3.0),
    "alignment": ("alignment acc", True, True, 0.02),
}


def headline(m: dict[str, Any]) -> dict[str, float | None]:
    """The generated condition's headline numbers of one metrics.json."""
    on = m.get("onset", {}).get("generated@0.1s", {})
    cat = m.get("category", {}).get("generated", {})
    return {"onset_acc": on.get("acc"), "onset_ap": on.get("ap"), "category": cat.get("category_acc"),
            "family": cat.get("family_acc"), "fad": m.get("fad", {}).get("generated"),
            "alignment": m.get("alignment", {}).get("generated", {}).get("accuracy")}


def work_share(m: dict[str, Any], base: dict[str, Any], bundle: str | Path | None = None) -> float:
    """The denoiser's work relative to the base's (a guided step costs two evaluations, the others one), on the
    noise schedule of `bundle` (default: the bundle the base evaluated)."""
    from engine.manifest import load_manifest
    from engine.sampling import NoiseScheduleVP, guided_steps

    schedule = NoiseScheduleVP(load_manifest(bundle or base["bundle"]["path"], verify_files=False).schedule)

    def cost(r: dict[str, Any]) -> int:
        interval = tuple(r.get("guidance_interval") or ()) or None
        return int(r["steps"]) + int(guided_steps(schedule, int(r["steps"]), interval).sum())

    return cost(m) / cost(base)


def setting(m: dict[str, Any]) -> str:
    gi = m.get("guidance_interval") or []
    return (f"DPM-Solver++({m.get('solver_order', 2)}M), {m['steps']} steps"
            + (f", guidance on ({gi[0]:g}, {gi[1]:g}]" if gi else ""))


def _fmt(key: str, x: float | None, delta: bool = False) -> str:
    if x is None:
        return "-"
    pct = METRICS[key][2]
    v = 100 * x if pct else x
    places = 3 if key == "onset_ap" else 1
    s = f"{v:+.{places}f}" if delta else f"{v:.{places}f}"
    return s + (" pt" if delta and pct else " %" if pct and not delta else "")


def compare(base: dict[str, Any], runs: dict[str, dict[str, Any]], noise: dict[str, Any] | None = None,
            bundle: str | Path | None = None) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Rows (name, setting, work, metrics, deltas, holds) and the tolerance per metric."""
    for name, m in runs.items():
        for key in ("clips", "candidates", "hits"):
            if m.get(key) != base.get(key):
                raise ValueError(f"{name}: {key} = {m.get(key)!r} differs from the base's {base.get(key)!r}")
        if m.get("bundle", {}).get("name") != base.get("bundle", {}).get("name"):
            raise ValueError(f"{name}: another bundle ({m.get('bundle')}) than the base's ({base.get('bundle')})")
    b = headline(base)
    tol = {k: METRICS[k][3] for k in METRICS}
    if noise is not None:
        n = headline(noise)
        for k in METRICS:
            if b[k] is not None and n[k] is not None:
                tol[k] = max(tol[k], abs(n[k] - b[k]))
    rows = []
    for name, m in runs.items():
        h = headline(m)
        d = {k: (h[k] - b[k]) if h[k] is not None and b[k] is not None else None for k in METRICS}
        worse = [k for k in METRICS if d[k] is not None
                 and (-d[k] if METRICS[k][1] else d[k]) > tol[k] + 1e-12]
        rows.append({"name": name, "setting": setting(m), "work": work_share(m, base, bundle),
                     "metrics": h, "delta": d, "worse": worse, "is_base": m is base})
    return rows, tol


def table(rows: list[dict[str, Any]], tol: dict[str, float]) -> str:
    head = ["run", "sampler", "denoiser work"] + [METRICS[k][0] for k in METRICS] + ["holds quality"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["name"], r["setting"], f"{r['work']:.2f}x"]
        for k in METRICS:
            d = r["delta"][k]
            cells.append(_fmt(k, r["metrics"][k]) + ("" if d is None or r["is_base"] else f" ({_fmt(k, d, True)})"))
        cells.append("yes" if not r["worse"] else "no: " + ", ".join(METRICS[k][0] for k in r["worse"]))
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append("Tolerance (the larger of the seed-to-seed spread and the floor): "
               + ", ".join(f"{METRICS[k][0]} {_fmt(k, tol[k], True).lstrip('+')}" for k in METRICS) + ".")
    return "\n".join(out)


def _load(folder: str) -> dict[str, Any]:
    path = Path(folder) / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run that evaluation first")
    return json.loads(path.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.compare_evals", description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="the evaluation of the current settings")
    ap.add_argument("--noise", help="the base settings with other seeds (the seed-to-seed spread)")
    ap.add_argument("--bundle", help="the bundle folder whose noise schedule counts the work (default: the one the "
                                     "base evaluated)")
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("runs", nargs="+", help="evaluation folders (those without metrics.json are skipped)")
    args = ap.parse_args(argv)
    try:
        base = _load(args.base)
        noise = _load(args.noise) if args.noise and (Path(args.noise) / "metrics.json").is_file() else None
        runs = {Path(r).name: (base if Path(r).resolve() == Path(args.base).resolve() else _load(r))
                for r in args.runs if (Path(r) / "metrics.json").is_file()}
        rows, tol = compare(base, runs, noise, args.bundle)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(rows, tol))
    if args.json:
        from engine.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps({"rows": rows, "tolerance": tol}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
