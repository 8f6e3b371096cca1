"""Reading pretrained-weights files safely and checking them against a module's state-dict layout.

Nothing here knows which release a file comes from: the caller names the file (`what`, e.g. "AudioLDM VAE ...")
and says what to do about a bad one (`advice`, e.g. "Download it again (huggingface.co/...)."), and the errors
end with those words. `engine.nn.official` (`foley import-official`) is the user.

- Pickles (`.pt`, `.ckpt`, `.bin`) are read with `torch.load(weights_only=True)` on the CPU, memory-mapped when
  they are zip archives; full unpickling happens only with `trusted=True` (the user's `--trust-pickle`). A zip
  archive without its end (an interrupted download) and a file that is not a checkpoint get their own message.
- `.safetensors` files are read with safetensors (no code runs).
- `check_layout` compares a state dict with a `Layout` ({key: (shape, is floating point)}, see `module_layout`):
  missing, unexpected and mis-shaped keys, the dtype kind, finite values, and an added or dropped key prefix
  (e.g. DataParallel's `module.`) explained. Errors are `engine.errors` checkpoint errors.
"""

from __future__ import annotations

import json
import logging
import os
import re
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from engine.errors import CheckpointLayoutError, CheckpointReadError, UntrustedCheckpointError

log = logging.getLogger(__name__)

Layout = dict[str, tuple[tuple[int, ...], bool]]  # key -> (shape, is floating point)

#: The last sentence of a read error when the caller gives none.
CHECK_THE_FILE = "Check the file."


def module_layout(module: nn.Module, *, strip: str = "") -> Layout:
    """{key: (shape, is_float)} of a module's state dict, keys without the leading `strip`."""
    out: Layout = {}
    for k, v in module.state_dict().items():
        out[k.removeprefix(strip)] = (tuple(v.shape), v.dtype.is_floating_point)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Reading files
# ---------------------------------------------------------------------------------------------------------------
def existing_file(path: str | os.PathLike[str], *, flag: str, what: str) -> Path:
    """`path` as a Path, or `CheckpointReadError` if it is missing or a folder (`flag`: the option that named it)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise CheckpointReadError(f"{flag} {p}: no such file. Pass the path of the {what}.")
    if not p.is_file():
        raise CheckpointReadError(f"{flag} {p} is a folder, not a file: pass the {what} itself.")
    return p


_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def read_pickle_checkpoint(path: Path, *, trusted: bool = False, advice: str = CHECK_THE_FILE) -> Any:
    """`torch.load` a pickled checkpoint on the CPU: tensors and plain containers only, unless `trusted`.

    Zip-format files are memory-mapped (a 600 MB checkpoint is not copied into memory). Raises
    `UntrustedCheckpointError` (naming the Python object that needs full unpickling) or `CheckpointReadError`
    (truncated, corrupt, or not a torch file; the message ends with `advice`).
    """
    is_zip = zipfile.is_zipfile(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if not is_zip and magic == b"PK\x03\x04":
        raise CheckpointReadError(
            f"{path} is truncated or damaged: it starts as a torch zip archive but its end (the zip directory) is "
            f"missing, e.g. an interrupted download. {advice}"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for bad files
        message = str(exc)
        match = _UNSUPPORTED_GLOBAL.search(message)
        if match is None:
            raise CheckpointReadError(
                f"{path} cannot be read as a PyTorch checkpoint ({first_line(message)}): the file is truncated, "
                f"corrupt, or not a checkpoint. {advice}"
            ) from exc
        if not trusted:
            raise UntrustedCheckpointError(
                f"{path} holds pickled Python objects besides tensors (first: {match.group(1)}), and unpickling "
                "them can run arbitrary code. If you trust where the file comes from, re-run with --trust-pickle "
                "to load it fully; otherwise get a clean copy."
            ) from exc
    log.warning("loading %s with full unpickling (--trust-pickle)", path)
    try:
        return torch.load(path, map_location="cpu", weights_only=False, mmap=is_zip)
    except Exception as exc:
        raise CheckpointReadError(
            f"{path} cannot be read even with full unpickling ({first_line(str(exc))}). {advice}"
        ) from exc


def read_safetensors(path: Path, *, advice: str = CHECK_THE_FILE) -> dict[str, Tensor]:
    """A safetensors file's tensors, or `CheckpointReadError` (ending with `advice`) for a truncated or bad file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointReadError(
            f"{path} cannot be read as safetensors ({first_line(str(exc))}): the file is truncated or corrupt. "
            f"{advice}"
        ) from exc


def read_state_dict(path: Path, *, trusted: bool = False, advice: str = CHECK_THE_FILE) -> dict[str, Any]:
    """The state dict in a `.safetensors` file or a pickle (`.bin`, `.pt`, ...); a pickle must hold a mapping."""
    if path.suffix == ".safetensors":
        return read_safetensors(path, advice=advice)
    obj = read_pickle_checkpoint(path, trusted=trusted, advice=advice)
    if not isinstance(obj, Mapping):
        raise CheckpointLayoutError(f"{path} holds a {type(obj).__name__}, not a state dict. {advice}")
    return dict(obj)


def read_json_config(path: Path, *, what: str, advice: str = CHECK_THE_FILE) -> dict[str, Any]:
    """The JSON object in a weights folder's `config.json` (`what`: whose folder), or `CheckpointReadError`."""
    if not path.is_file():
        raise CheckpointReadError(f"{path} is missing: the {what} folder needs its config.json.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointReadError(f"{path} is not valid JSON ({exc}). {advice}") from exc
    if not isinstance(data, dict):
        raise CheckpointReadError(f"{path} is not a JSON object. {advice}")
    return data


def find_weights_file(folder: Path, names: tuple[str, str], *, what: str, advice: str = CHECK_THE_FILE) -> Path:
    """The first of `names` (preferred form first, e.g. safetensors before a pickled `.bin`) present in `folder`."""
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise CheckpointReadError(
        f"{folder} holds neither {names[0]} nor {names[1]}: the {what} weights are missing. {advice}"
    )


def first_line(message: str) -> str:
    """The first line of an exception's message, at most 300 characters (for quoting it in our errors)."""
    line = message.strip().splitlines()[0] if message.strip() else "no details"
    return line[:300]


# ---------------------------------------------------------------------------------------------------------------
# Checking a state dict against a layout
# ---------------------------------------------------------------------------------------------------------------
def keys_text(keys: Iterable[str], limit: int = 8) -> str:
    """The first `limit` keys, quoted, and how many more there are."""
    keys = list(keys)
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def prefix_hint(missing: list[str], unexpected: list[str]) -> str | None:
    """Explain a layout mismatch that is only a key prefix added or dropped (e.g. DataParallel's 'module.')."""
    miss = set(missing)
    if unexpected and missing:
        for key in unexpected:
            for exp in missing:
                if key.endswith("." + exp):
                    prefix = key[: -len(exp)]
                    n = sum(1 for k in unexpected if k.startswith(prefix) and k[len(prefix):] in miss)
                    if n >= max(1, len(missing) // 2):
                        return (f"its keys carry an extra prefix {prefix!r} (e.g. {key!r} where {exp!r} is expected) "
                                f"on {n} of {len(unexpected)} unexpected keys")
                if exp.endswith("." + key):
                    prefix = exp[: -len(key)]
                    n = sum(1 for k in unexpected if prefix + k in miss)
                    if n >= max(1, len(missing) // 2):
                        return (f"its keys lack the prefix {prefix!r} (e.g. {key!r} where {exp!r} is expected) on "
                                f"{n} keys")
    return None


def check_layout(
    state: Mapping[str, Any], layout: Layout, *, what: str, path: Path | str, fix: str, check_values: bool = True,
) -> None:
    """Raise `CheckpointLayoutError` unless `state` holds exactly the keys of `layout` with their shapes.

    The message says `path` is not the expected `what`, names the missing, unexpected and mis-shaped keys (a few
    of each, with counts), explains an added or dropped key prefix, and ends with `fix` (what to do). With
    `check_values`, floating-point tensors must also be finite.
    """
    problems: list[str] = []
    not_tensors = sorted(k for k, v in state.items() if not isinstance(v, Tensor))
    if not_tensors:
        problems.append(f"{len(not_tensors)} entries are not tensors: {keys_text(not_tensors)}")
    missing = [k for k in layout if k not in state]
    unexpected = [k for k in state if k not in layout]
    hint = prefix_hint(missing, unexpected)
    if hint:
        problems.append(hint)
    if missing:
        problems.append(f"{len(missing)} of the {len(layout)} expected keys are missing: {keys_text(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} keys are not part of the layout: {keys_text(unexpected)}")
    wrong: list[str] = []
    for k, (shape, is_float) in layout.items():
        v = state.get(k)
        if not isinstance(v, Tensor):
            continue
        if tuple(v.shape) != shape:
            wrong.append(f"{k!r} has shape {list(v.shape)}, expected {list(shape)}")
        elif v.dtype.is_floating_point != is_float or v.is_complex():
            kind = "floating-point" if is_float else "integer"
            wrong.append(f"{k!r} holds {str(v.dtype).removeprefix('torch.')} values, expected {kind}")
        elif check_values and is_float and v.numel() and not v.is_meta and not bool(torch.isfinite(v).all()):
            wrong.append(f"{k!r} holds NaN or infinite values")
    if wrong:
        problems.append(f"{len(wrong)} tensors do not match: " + "; ".join(wrong[:6])
                        + (f"; and {len(wrong) - 6} more" if len(wrong) > 6 else ""))
    if problems:
        raise CheckpointLayoutError(
            f"{path} is not the expected {what}: " + ". ".join(problems) + f". {fix}"
        )


def only_tensors(obj: Mapping[str, Any]) -> bool:
    """Whether `obj` is a non-empty mapping of tensors (a state dict, not a wrapper around one)."""
    return bool(obj) and all(isinstance(v, Tensor) for v in obj.values())


def float_dtypes(state: Mapping[str, Tensor]) -> list[str]:
    """The floating-point dtypes a state dict stores, e.g. ['float16', 'float32']."""
    return sorted({str(v.dtype).removeprefix("torch.") for v in state.values() if v.dtype.is_floating_point})


def load_strict(module: nn.Module, state: Mapping[str, Tensor], *, prefix: str = "") -> nn.Module:
    """Copy a checked state into a module with strict=True (dtype converted to the module's); never partial."""
    target = module.state_dict()
    converted = {prefix + k: v.to(target[prefix + k].dtype) for k, v in state.items()}
    result = module.load_state_dict(converted, strict=True)
    if result.missing_keys or result.unexpected_keys:  # pragma: no cover - strict=True raises first
        raise CheckpointLayoutError(f"strict load left keys out: {result}")
    return module.eval()


__all__ = [
    "CHECK_THE_FILE",
    "Layout",
    "check_layout",
    "existing_file",
    "find_weights_file",
    "first_line",
    "float_dtypes",
    "keys_text",
    "load_strict",
    "module_layout",
    "only_tensors",
    "prefix_hint",
    "read_json_config",
    "read_pickle_checkpoint",
    "read_safetensors",
    "read_state_dict",
]
