"""The VAE decoder lever of issue #17: the shipped decoder graph quantised to int8, timed against it, and a copy of
the bundle that carries it, for `training.evaluate` to judge (docs/results.md, "Speed levers").

    python -m benchmarks.vae_int8 make --out DIR [--bundle B]   # DIR: the bundle, its vae_decoder graph int8
    python -m benchmarks.vae_int8 time --out DIR [--runs 7]     # both decoder graphs at batch 4, one process
    BUNDLE=DIR OUT=EVAL bash training/recipes/speed.sh evaluate interval   # its takes, same clips and seeds

The quantisation is ONNX Runtime's dynamic one (int8 weights; activations quantised per call), of the Conv and
MatMul nodes, as the denoiser's int8 graph is made (`engine.nn.export`, MatMul only there). The copy's manifest gets
the new graph's sha256 and a note; everything else (name, components, sampler) is the shipped bundle's, so the
evaluation compares the decoder alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np


def _fold_float16_casts(src: Path, dst: Path) -> None:
    """The shipped graphs store weights as float16 initializers cast to float32 in the graph; the quantiser wants the
    weights themselves as initializers: each Cast of a float16 initializer becomes a float32 initializer."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    keep = []
    for node in g.node:
        src_name = node.input[0] if node.op_type == "Cast" and node.input else None
        init = inits.get(src_name) if src_name else None
        if init is not None and init.data_type == onnx.TensorProto.FLOAT16:
            g.initializer.append(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float32),
                                                         node.output[0]))
        else:
            keep.append(node)
    del g.node[:]
    g.node.extend(keep)
    used = {i for n in g.node for i in n.input}
    live = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(live)
    onnx.save(model, str(dst))


def make(bundle: Path, out: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from engine.manifest import load_manifest, sha256_file, write_manifest

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(bundle, out)
    m = load_manifest(out)
    graph = m.onnx["graphs"]["vae_decoder"]
    path = out / graph["file"]
    fp32 = path.with_suffix(".fp32.onnx")
    _fold_float16_casts(path, fp32)
    tmp = path.with_suffix(".int8.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(fp32, tmp, op_types_to_quantize=["Conv", "MatMul"], weight_type=QuantType.QInt8)
    fp32.unlink()
    tmp.replace(path)
    graph["sha256"] = sha256_file(path)
    graph["weights_storage"] = "int8 (ONNX Runtime dynamic quantisation of Conv and MatMul; benchmarks.vae_int8)"
    write_manifest(out, m)
    load_manifest(out)  # checks the files against the manifest
    return out


def time_decoders(bundle: Path, int8_bundle: Path, runs: int = 7, batch: int = 4) -> dict[str, Any]:
    import onnxruntime as ort

    from benchmarks.denoiser_profile import alternate
    from engine.backends.onnx_backend import session_options
    from engine.manifest import load_manifest

    graph = load_manifest(bundle, verify_files=False).onnx["graphs"]["vae_decoder"]
    shape = [batch if isinstance(d, str) else int(d) for d in graph["inputs"][0]["shape"]]
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    sessions = {name: ort.InferenceSession(str(b / graph["file"]), session_options(),
                                           providers=["CPUExecutionProvider"])
                for name, b in (("fp32", bundle), ("int8", int8_bundle))}
    outs, med = alternate(sessions, {graph["inputs"][0]["name"]: x}, runs)
    return {"batch": batch, "seconds": med, "ratio": med["int8"] / med["fp32"],
            "max_abs_diff": float(np.abs(outs["int8"] - outs["fp32"]).max()),
            "max_abs_output": float(np.abs(outs["fp32"]).max()),
            "bytes": {"fp32": (bundle / graph["file"]).stat().st_size,
                      "int8": (int8_bundle / graph["file"]).stat().st_size}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.vae_int8", description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["make", "time"])
    ap.add_argument("--out", required=True, help="the int8 bundle's folder")
    ap.add_argument("--bundle", default=None, help="the bundle to start from (default: the shipped model)")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", help="also write the timing here")
    args = ap.parse_args(argv)
    from engine.pipeline import default_bundle_dir

    bundle = Path(args.bundle) if args.bundle else default_bundle_dir()
    out = Path(args.out).expanduser()
    if args.what == "make":
        print(f"vae_int8: {make(bundle, out)}")
        return 0
    res = time_decoders(bundle, out, args.runs)
    print(f"VAE decoder, batch {res['batch']}: int8 {res['seconds']['int8']:.3f} s vs fp32 "
          f"{res['seconds']['fp32']:.3f} s ({res['ratio']:.2f}x), outputs differ by up to {res['max_abs_diff']:.3g} "
          f"(largest output {res['max_abs_output']:.3g}); graph {res['bytes']['int8'] / 1e6:.1f} MB vs "
          f"{res['bytes']['fp32'] / 1e6:.1f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
