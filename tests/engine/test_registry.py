"""The component-type registry (engine.components) is whole, and every reader agrees with it; the strict configs.

Structural: a type added in only one place (a registry entry without its graphs or exporter, a graph no type
lists, a config that does not round-trip, a module the writer cannot name) fails here.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine import graphs
from engine.components import SLOTS, TYPES, ComponentType
from engine.config_base import StrictConfig
from engine.errors import UnknownConfigKeyError
from engine.spec import DIFF_FOLEY

ROOT = Path(__file__).resolve().parents[2]
ENTRIES = list(TYPES.values())


def example_config(t: ComponentType) -> Any:
    """A config of the type: its defaults, or (for configs without them) the tiny test shape."""
    cls = t.config_class()
    if t.name == "mdsgen":
        return cls.from_spec(DIFF_FOLEY, "tiny", temporal_condition=True, hit_slots=8)
    return cls()


def test_slots_and_types_are_consistent() -> None:
    assert all(t.slot in SLOTS for t in ENTRIES)
    assert all(any(t.slot == s for t in ENTRIES) for s in SLOTS), "a slot without a type"
    assert len({t.name for t in ENTRIES}) == len(ENTRIES)
    for t in ENTRIES:
        # a network has weights and graphs; a numpy-computed type has neither
        assert t.has_weights == bool(t.module) == bool(t.graphs), t.name
        assert (t.condition is not None) == (t.slot == "frame_encoder"), t.name


@pytest.mark.parametrize("t", ENTRIES, ids=lambda t: t.name)
def test_each_types_graphs_are_known_graphs_of_its_slot(t: ComponentType) -> None:
    for g in t.graphs:
        assert any(g is x for x in graphs.GRAPHS), f"{t.name}: graph {g.name} is not in engine.graphs.GRAPHS"
        assert g.component == t.slot
        assert t.name in g.types
    # the graphs a bundle of this type needs are among the type's (one per name, chosen by the config)
    cfg = example_config(t).to_dict()
    needed = graphs.graphs_for_components({t.slot: t.name}, {t.slot: cfg})
    assert all(any(g is x for x in t.graphs) for g in needed)
    assert len({g.name for g in needed}) == len({g.name for g in t.graphs})
    assert graphs.components_without_graphs({t.slot: t.name}) == []


def test_every_graph_serves_a_registered_type() -> None:
    for g in graphs.GRAPHS:
        assert g.types, f"graph {g.name} ({g.doc[:40]}...) is listed by no engine.components entry"
        assert all(TYPES[n].slot == g.component for n in g.types)
    assert graphs.parameter_free_types() == tuple(t.name for t in ENTRIES if not t.has_weights)


@pytest.mark.parametrize("t", ENTRIES, ids=lambda t: t.name)
def test_each_types_config_is_strict_and_round_trips(t: ComponentType) -> None:
    cls = t.config_class()
    assert issubclass(cls, StrictConfig) and dataclasses.is_dataclass(cls)
    cfg = example_config(t)
    d = json.loads(json.dumps(cfg.to_dict()))  # as a manifest stores it
    assert d == cfg.to_dict()
    assert cls.from_dict(d) == cfg
    assert t.parse_config(d) == cfg
    with pytest.raises(UnknownConfigKeyError) as info:
        cls.from_dict({**d, "bogus_key": 1})
    assert info.value.unknown == ["bogus_key"] and set(info.value.known) == set(d)


def test_the_manifest_reads_the_registry() -> None:
    from engine import manifest

    assert set(manifest.COMPONENT_TYPES) == set(SLOTS)
    assert {n for types in manifest.COMPONENT_TYPES.values() for n in types} == set(TYPES)
    assert manifest.REQUIRED_COMPONENTS == ("denoiser", "vae", "vocoder")
    assert set(manifest.FRAME_ENCODER_CONDITION) == {t.name for t in ENTRIES if t.slot == "frame_encoder"}
    assert manifest.CONDITION_KINDS == ("efficientnet-lite0", "cavp")


@pytest.mark.parametrize("t", [t for t in ENTRIES if t.has_weights], ids=lambda t: t.name)
def test_each_network_builds_exports_and_is_named_back(t: ComponentType) -> None:
    torch = pytest.importorskip("torch")
    from engine.nn.bundle import OPTIONAL_COMPONENTS, module_component_type
    from engine.nn.export import EXPORTERS

    for g in t.graphs:
        assert (g.name, t.name) in EXPORTERS, f"no exporter for graph {g.name} of {t.name}"
    cfg = example_config(t)
    with torch.device("meta"):
        module = t.build(cfg.to_dict())
    assert type(module) is t.module_class() and module.config == cfg
    assert module_component_type(t.slot, module) == t.name  # what write_bundle records is what build reads
    if SLOTS[t.slot].addable:
        assert t.name in OPTIONAL_COMPONENTS[t.slot]


# ---- the strict config base -----------------------------------------------------------------------------------
@pytest.mark.parametrize("ref", [
    # these raised a bare TypeError from __init__ for an unknown key before engine.config_base
    "engine.nn.vae:VAEConfig",
    "engine.nn.bwe:BweConfig",
    "engine.nn.cavp:CAVPConfig",
    "engine.nn.frame_encoder:FrameEncoderConfig",
    "engine.nn.vocoder:VocoderConfig",
])
def test_configs_that_failed_with_a_bare_type_error_name_the_unknown_key(ref: str) -> None:
    pytest.importorskip("torch")
    from engine.components import resolve

    cls = resolve(ref)
    with pytest.raises(UnknownConfigKeyError, match=r"unknown .*fields \['latent_chanels'\]; known: \[") as info:
        cls.from_dict({**cls().to_dict(), "latent_chanels": 4})
    assert isinstance(info.value, ValueError)  # as the strict configs raised before (tests match ValueError)
    assert info.value.known == [f.name for f in dataclasses.fields(cls)]


def test_the_three_strict_configs_keep_their_messages() -> None:
    pytest.importorskip("torch")
    from engine.nn.denoiser import DenoiserConfig
    from engine.nn.hifigan import HiFiGANConfig
    from engine.nn.hit_detector import HitDetectorConfig

    den = DenoiserConfig.from_spec(DIFF_FOLEY, "tiny").to_dict()
    with pytest.raises(ValueError, match=r"unknown denoiser-config fields \['bogus'\]"):
        DenoiserConfig.from_dict({**den, "bogus": 1})
    with pytest.raises(ValueError, match=r"unknown hifigan-config fields \['bogus'\]"):
        HiFiGANConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match=r"unknown hit-detector config fields \['bogus'\]"):
        HitDetectorConfig.from_dict({"bogus": 1})
    # JSON lists come back as the tuples the dataclasses hold
    assert HitDetectorConfig.from_dict({"dilations": [1, 2]}).dilations == (1, 2)
    assert HiFiGANConfig.from_dict(HiFiGANConfig().to_dict()).resblock_dilation_sizes == ((1, 3, 5),) * 3


def test_the_tiny_preset_is_preset_t_with_the_tiny_overrides() -> None:
    pytest.importorskip("torch")
    from engine.nn.denoiser import DenoiserConfig
    from engine.nn.presets import PRESETS, TINY_DENOISER

    assert "tiny" not in PRESETS  # not a model: not listed with the paper's shapes
    assert DenoiserConfig.from_spec(DIFF_FOLEY, "tiny") == DenoiserConfig.from_spec(DIFF_FOLEY, "T", **TINY_DENOISER)
    with pytest.raises(ValueError, match="unknown denoiser preset 'XL'.*'tiny'"):
        DenoiserConfig.from_spec(DIFF_FOLEY, "XL")


def test_the_registry_needs_no_torch() -> None:
    code = ("import sys\n"
            "import engine.components as c, engine.graphs as g, engine.manifest as m\n"
            "assert all(gr.types for gr in g.GRAPHS)\n"
            "assert c.TYPES['griffin-lim'].parse_config({'n_iter': 8}).n_iter == 8\n"
            "import engine.nn.presets\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
