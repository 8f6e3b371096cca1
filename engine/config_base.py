"""One strict base for the init-args configs stored in a bundle manifest (`DenoiserConfig`, `VAEConfig`, ...).

A component's config is a frozen dataclass that mixes in `StrictConfig`. `to_dict` gives its JSON-friendly dict
(tuples as lists) and `from_dict` rebuilds it: lists become tuples again, and a key the dataclass does not have
raises `UnknownConfigKeyError` naming the unknown keys and the known ones (a manifest edited by hand, or written by
a newer engine), never a bare `TypeError` from `__init__`. A subclass names itself with `config_name` (used in the
message) and may override `_from_json` for further conversions. No torch here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from engine.errors import UnknownConfigKeyError

__all__ = ["StrictConfig", "UnknownConfigKeyError"]

C = TypeVar("C", bound="StrictConfig")


def _to_json(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    return value


def _to_tuples(value: Any) -> Any:
    return tuple(_to_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


class StrictConfig:
    """Mixin of a (frozen) dataclass config: `to_dict` / `from_dict` with unknown keys refused by name."""

    #: what the config is called in messages: "unknown <config_name> fields [...]"
    config_name: ClassVar[str] = "config"

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-friendly (tuples as lists, recursively)."""
        return {f.name: _to_json(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[C], d: Mapping[str, Any]) -> C:
        """The config of `d` (as `to_dict` wrote it); missing keys take their defaults, unknown keys raise
        `UnknownConfigKeyError` (a ValueError)."""
        known = cls.field_names()
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise UnknownConfigKeyError(f"unknown {cls.config_name} fields {unknown}; known: {known}",
                                        unknown=unknown, known=known)
        return cls(**cls._from_json(dict(d)))

    @classmethod
    def _from_json(cls, d: dict[str, Any]) -> dict[str, Any]:
        """Convert JSON values back to field values: lists (at the top level of a field) become tuples, nested
        lists too; dict fields are left as they are."""
        return {k: _to_tuples(v) if isinstance(v, list) else v for k, v in d.items()}
