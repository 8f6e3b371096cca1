"""The one registry of bundle component types: what each is, how torch builds it, which ONNX graphs it exports.

A bundle (`engine.manifest`) holds components in named slots (`SLOTS`: frame_encoder, denoiser, vae, vocoder,
hit_detector, bwe); each component has a type (`TYPES`: "mdsgen", "vocos", "cavp-resnet3d50", ...). Every module
that needs to know about types reads this registry instead of keeping its own list:

- `engine.manifest`: the types a slot accepts (`COMPONENT_TYPES`), the required slots (`REQUIRED_COMPONENTS`), the
  condition kind a frame encoder makes (`FRAME_ENCODER_CONDITION`);
- `engine.graphs`: which graphs of `GRAPHS` serve a type (`GraphIO.types`), which types need none;
- `engine.nn.bundle`: building a component's torch module from its manifest config (`build_component`), the type of
  a module being saved (`component_from_module`, used by `write_bundle` and `engine.nn.official`), the slots
  `add_component` may fill in a finished bundle;
- `engine.backends.torch_backend`: which components have weights to load.

No torch here: the config and module classes are named as "module:attribute" strings and imported on first use
(the ONNX path reads the registry without torch).

Adding a component type (say a BigVGAN vocoder):

1. write its module and its config in `engine/nn/<name>.py`; the config is a frozen dataclass mixing in
   `engine.config_base.StrictConfig` (to_dict / from_dict, unknown keys refused) and the module takes
   `config=` as its only constructor argument;
2. if it exports an ONNX graph, add a `GraphIO` for it to `engine.graphs.GRAPHS` and an exporter keyed by (graph
   name, type) with `engine.nn.export.register_exporter` (and, for new outputs, a branch in the ONNX backend);
3. add one `ComponentType` to `TYPES` below naming all of it (and a `Slot` to `SLOTS` for a new slot).

`tests/engine/test_components.py` checks that every entry is whole: its classes import, its config round-trips,
its graphs are in `GRAPHS` and have exporters, and no graph serves an unregistered type.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine import graphs as g
from engine.config_base import StrictConfig
from engine.errors import BundleError

__all__ = ["SLOTS", "TYPES", "ComponentType", "GriffinLimConfig", "Slot", "component_type", "resolve", "types_of_slot"]


@dataclass(frozen=True)
class GriffinLimConfig(StrictConfig):
    """The config of a "griffin-lim" vocoder component: no weights, `engine.audio.griffin_lim` runs it."""

    config_name = "griffin-lim-config"

    n_iter: int = 32


def resolve(ref: str) -> Any:
    """The object named by "package.module:attribute" (imported now)."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Slot:
    """A named place for one component in a bundle."""

    name: str
    #: every bundle has it (the frame encoder is required only for the efficientnet-lite0 condition, which
    #: `engine.manifest` checks itself)
    required: bool
    #: `engine.nn.bundle.add_component` may put it into a finished bundle
    addable: bool
    doc: str


@dataclass(frozen=True)
class ComponentType:
    """One component type: the slot it fills, its config and torch module, its ONNX graphs."""

    #: the type string of the manifest ("mdsgen")
    name: str
    #: the slot (`SLOTS`) it fills
    slot: str
    #: "module:Class" of its config (a `StrictConfig`)
    config: str
    #: "module:Class" of its torch module (built as `Class(config=Config.from_dict(d))`); "" for a type the runtime
    #: computes in numpy (no module, no weights, no graph)
    module: str
    #: the graphs of `engine.graphs.GRAPHS` exported from it (a config may select among them, `GraphIO.config_flag`)
    graphs: tuple[g.GraphIO, ...]
    doc: str
    #: frame encoders: the video condition kind its features are (the denoiser's `condition` must match)
    condition: str | None = None

    @property
    def has_weights(self) -> bool:
        """Whether the component is a network with a weights file (else the runtime computes it in numpy)."""
        return bool(self.module)

    def config_class(self) -> type:
        return resolve(self.config)

    def module_class(self) -> type:
        if not self.module:
            raise BundleError(f"component type {self.name!r} has no torch module")
        return resolve(self.module)

    def parse_config(self, config: Mapping[str, Any]) -> Any:
        """The config object of a manifest's config dict (`UnknownConfigKeyError` for unknown keys)."""
        return self.config_class().from_dict(config)

    def build(self, config: Mapping[str, Any]) -> Any:
        """The torch module of a manifest's config dict, without weights (imports torch)."""
        return self.module_class()(config=self.parse_config(config))


SLOTS: dict[str, Slot] = {s.name: s for s in (
    Slot("frame_encoder", required=False, addable=False,
         doc="RGB frames -> per-frame video features; a cavp bundle may go without it (precomputed features)"),
    Slot("denoiser", required=True, addable=False, doc="the diffusion transformer over VAE latents"),
    Slot("vae", required=True, addable=False, doc="latent -> mel image"),
    Slot("vocoder", required=True, addable=False, doc="mel -> waveform"),
    Slot("hit_detector", required=False, addable=True,
         doc="optional: motion features -> onset logits (engine.hit_detection, hits='auto')"),
    Slot("bwe", required=False, addable=True, doc="optional: the 16 -> 48 kHz bandwidth extension (engine.bwe)"),
)}

TYPES: dict[str, ComponentType] = {t.name: t for t in (
    ComponentType("efficientnet-lite0-projection", "frame_encoder", "engine.nn.frame_encoder:FrameEncoderConfig",
                  "engine.nn.frame_encoder:VideoFeatureModel", (g.FRAME_ENCODER,),
                  doc="EfficientNet-Lite0 (ImageNet) pooled features and a trained temporal projection",
                  condition="efficientnet-lite0"),
    ComponentType("cavp-resnet3d50", "frame_encoder", "engine.nn.cavp:CAVPConfig", "engine.nn.cavp:CAVPVideoEncoder",
                  (g.FRAME_ENCODER_CAVP,), doc="Diff-Foley's CAVP video encoder (SlowOnly ResNet3d-50)",
                  condition="cavp"),
    ComponentType("mdsgen", "denoiser", "engine.nn.denoiser:DenoiserConfig", "engine.nn.denoiser:MDSGen",
                  (g.CONDITION, g.CONDITION_HITS, g.DENOISER), doc="MDSGen (engine.nn.denoiser)"),
    ComponentType("autoencoder-kl", "vae", "engine.nn.vae:VAEConfig", "engine.nn.vae:MelVAE", (g.VAE_DECODER,),
                  doc="diffusers' AutoencoderKL on mel images"),
    ComponentType("griffin-lim", "vocoder", "engine.components:GriffinLimConfig", "", (),
                  doc="Griffin-Lim phase reconstruction in numpy (engine.audio), no weights"),
    ComponentType("vocos", "vocoder", "engine.nn.vocoder:VocoderConfig", "engine.nn.vocoder:Vocoder",
                  (g.VOCODER_VOCOS,), doc="a Vocos vocoder (the inverse STFT runs in numpy)"),
    ComponentType("hifigan", "vocoder", "engine.nn.hifigan:HiFiGANConfig", "engine.nn.hifigan:HiFiGAN",
                  (g.VOCODER_HIFIGAN,), doc="AudioLDM's HiFi-GAN vocoder"),
    ComponentType("hit-detector-tcn", "hit_detector", "engine.nn.hit_detector:HitDetectorConfig",
                  "engine.nn.hit_detector:HitDetector", (g.HIT_DETECTOR,), doc="the dilated-TCN hit detector"),
    ComponentType("bwe-conv1d", "bwe", "engine.nn.bwe:BweConfig", "engine.nn.bwe:BandwidthNet", (g.BWE,),
                  doc="the Conv1d bandwidth extension on log-STFT magnitudes"),
)}


def component_type(name: str) -> ComponentType | None:
    """The registry entry of a type string (None for one this engine does not know)."""
    return TYPES.get(name)


def types_of_slot(slot: str) -> tuple[str, ...]:
    """The type strings a slot accepts, in registry order."""
    return tuple(t.name for t in TYPES.values() if t.slot == slot)
