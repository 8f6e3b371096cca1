"""`FoleyEngine`: a loaded bundle + backend that turns a video segment into Foley candidates.

One generation: read 32 frames at 4 fps from the segment (PyAV) -> frame features -> Reducer condition (once) ->
DPM-Solver++(2M) with dynamic classifier-free guidance, all candidates and the guidance pair in one batch ->
VAE decoder -> mel -> vocoder (neural, or Griffin-Lim) -> 16 kHz waveforms -> at 48 kHz (the default of a bundle
with a bandwidth extension) the 8-24 kHz band predicted by it (`engine.bwe`), else the generated rate as it is.
Progress goes to `on_progress`, `should_cancel` is polled between steps and stages.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine import audio, bwe
from engine.backends import Backend, BackendKind, get_backend
from engine.backends.base import cpu_threads
from engine.errors import BundleError, Cancelled, FeatureFileError, InvalidRequestError, VideoNotFoundError
from engine.hits import HitsSource, check_hits, hit_shape, hit_track
from engine.manifest import ModelManifest, load_manifest
from engine.media import VideoInfo, read_frames, read_segment_frames
from engine.motion import MotionCache
from engine.region_cache import RegionCache, file_key
from engine.sampling import NoiseScheduleVP, sample_dpmpp_2m
from engine.spec import QUALITIES, SamplerConfig, SegmentSpec

log = logging.getLogger(__name__)

#: How a take reached its output rate (the sidecars' "rate_stage"): as generated, through the bundle's bandwidth
#: extension (its component type, e.g. "bwe-conv1d"), or plain polyphase resampling (a bundle without one).
RATE_STAGE_NONE, RATE_STAGE_RESAMPLE = "none", "resample"

FEATURE_SUFFIXES = (".npy", ".npz")
# share of the whole job each stage takes, for one progress fraction
_STAGE_WEIGHTS = {"video": 0.05, "features": 0.10, "denoise": 0.62, "decode": 0.10, "vocode": 0.05, "extend": 0.08}
_STAGE_START = dict(zip(_STAGE_WEIGHTS, itertools.accumulate([0.0, *_STAGE_WEIGHTS.values()])))


@dataclass(frozen=True)
class Progress:
    """A progress report: the stage, the overall fraction done (0..1), and a human-readable message."""

    stage: str
    fraction: float
    message: str
    step: int = 0
    total: int = 0


@dataclass
class Candidate:
    """One generated take for a segment."""

    index: int
    seed: int
    audio: np.ndarray  # (num_samples,) float32
    mel: np.ndarray  # (n_mels, mel_frames) float32, normalised
    sample_rate: int
    settings: dict[str, Any]


@dataclass(frozen=True)
class EngineInfo:
    """What a `FoleyEngine` has loaded and how it runs (`FoleyEngine.describe`: logs, the CLI, the app's status bar).

    `to_dict` gives it as the JSON-ready dict it is written out as (same keys, in this order; tuples as lists)."""

    bundle: str
    name: str
    random_weights: bool
    backend: str
    device: str
    providers: tuple[str, ...]
    fallback_reason: str | None  # why the backend runs on another device than asked (ONNX: CUDA -> CPU), if it does
    segment_seconds: float
    sample_rate: int  # the generated rate
    vocoder: str  # the vocoder component's type ("vocos", "hifigan", "griffin-lim")
    output_rates: tuple[int, ...]
    default_output_rate: int
    bwe: str | None  # the bandwidth extension's component type, None without one

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["providers"], d["output_rates"] = list(self.providers), list(self.output_rates)
        return d


@dataclass
class GenerationResult:
    """All candidates of one generation, with what they were made from."""

    candidates: list[Candidate]
    video: str
    start: float
    duration: float
    sample_rate: int
    settings: dict[str, Any]
    video_info: VideoInfo | None = None
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def load_feature_file(path: str | Path, start: float, spec: SegmentSpec) -> tuple[np.ndarray, list[str]]:
    """Precomputed CAVP-style features (T x feature_dim at spec.video_fps, .npy or .npz) -> (num_frames, dim).

    The segment's rows start at round(start * fps); a file that ends early holds its last row (with a warning).
    """
    p = Path(path)
    if not p.is_file():
        raise VideoNotFoundError(f"feature file {p} does not exist")
    try:
        loaded = np.load(p, allow_pickle=False)  # .npy or .npz by the file's content, whatever its suffix
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded as z:
                if not z.files:
                    raise FeatureFileError(f"feature file {p} holds no array")
                arr = z["arr_0"] if "arr_0" in z.files else z[z.files[0]]
        else:
            arr = loaded
    except FeatureFileError:
        raise
    except Exception as exc:  # numpy's readers raise many types on damaged files (found by fuzzing)
        raise FeatureFileError(f"cannot read feature file {p} ({exc!r}); it must be a numpy .npy or .npz") from exc
    if not isinstance(arr, np.ndarray):
        raise FeatureFileError(f"feature file {p} does not hold an array")
    if arr.ndim != 2 or arr.shape[1] != spec.feature_dim:
        raise FeatureFileError(
            f"feature file {p} has shape {arr.shape}; expected (T, {spec.feature_dim}) features at "
            f"{spec.video_fps:g} fps (Diff-Foley CAVP features are T x 512)"
        )
    if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.isfinite(arr)):
        raise FeatureFileError(f"feature file {p} must hold finite floating-point numbers")
    first = round(start * spec.video_fps)
    if start < 0 or first >= arr.shape[0]:
        raise InvalidRequestError(
            f"start {start:.3f} s lies outside the {arr.shape[0] / spec.video_fps:.2f} s covered by {p.name}"
        )
    rows = arr[first : first + spec.num_frames].astype(np.float32)
    warnings = []
    if rows.shape[0] < spec.num_frames:
        warnings.append(
            f"the features end {rows.shape[0] / spec.video_fps:.2f} s into the segment; the last frame is held"
        )
        rows = np.concatenate([rows, np.repeat(rows[-1:], spec.num_frames - rows.shape[0], axis=0)])
    return rows, warnings


class FoleyEngine:
    """A model bundle loaded once, kept loaded, and run for as many generations as needed (not thread-safe)."""

    def __init__(self, bundle_dir: str | Path, manifest: ModelManifest, backend: Backend) -> None:
        self.bundle_dir = Path(bundle_dir)
        self.manifest = manifest
        self.backend = backend
        self.spec: SegmentSpec = manifest.spec
        self._schedule = NoiseScheduleVP(manifest.schedule)
        #: the motion features of the video regions this engine has seen (hit detection), kept for the session
        self.motion_cache = MotionCache()
        #: the frame features of the segments this engine has seen (`video_features`, `prepare`): generating a
        #: segment again (more takes, other seeds, other hits) starts at the denoiser
        self.feature_cache: RegionCache[tuple[np.ndarray, VideoInfo | None, tuple[str, ...]]] = RegionCache(64)

    # ---- facts -------------------------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        """The rate the bundle generates at (its spec's; 16 kHz for every bundle so far)."""
        return self.spec.sample_rate

    @property
    def has_bwe(self) -> bool:
        """Whether the bundle has a bandwidth extension (16 -> 48 kHz, `engine.bwe`) that its backend runs."""
        return ("bwe" in self.manifest.components and bool(getattr(self.backend, "has_bwe", False))
                and self.spec.sample_rate == bwe.SR_LOW)

    @property
    def output_rates(self) -> tuple[int, ...]:
        """The rates `generate(sample_rate=...)` delivers: the generated rate, and 48 kHz."""
        return tuple(sorted({self.spec.sample_rate, bwe.SR_HIGH}))

    @property
    def default_output_rate(self) -> int:
        """48 kHz with the bundle's bandwidth extension; a bundle without one delivers its generated rate."""
        return bwe.SR_HIGH if self.has_bwe else self.spec.sample_rate

    def rate_stage(self, sample_rate: int) -> str:
        """How takes reach `sample_rate` (one of `output_rates`): "none", the extension's type, or "resample"."""
        if sample_rate not in self.output_rates:
            raise InvalidRequestError(
                f"sample_rate must be one of {', '.join(map(str, self.output_rates))} Hz, got {sample_rate!r}")
        if sample_rate == self.spec.sample_rate:
            return RATE_STAGE_NONE
        return self.manifest.components["bwe"].type if self.has_bwe else RATE_STAGE_RESAMPLE

    def to_output_rate(self, wavs: np.ndarray, sample_rate: int) -> tuple[np.ndarray, str]:
        """Generated waveforms (N, num_samples) -> (N, samples at `sample_rate`) and the `rate_stage` used."""
        stage = self.rate_stage(sample_rate)
        wavs = np.asarray(wavs, np.float32)
        if stage == RATE_STAGE_NONE:
            return wavs, stage
        if stage == RATE_STAGE_RESAMPLE:
            return bwe.resample(wavs, self.spec.sample_rate, sample_rate), stage
        return bwe.extend(wavs, self.backend.predict_high_band), stage

    @property
    def segment_duration(self) -> float:
        return self.spec.duration

    @property
    def takes_hits(self) -> bool:
        """Whether the denoiser follows a hit track (a hit-aware bundle); others ignore hits."""
        return hit_shape(self.manifest.components["denoiser"].config)[1] > 0

    @property
    def has_hit_detector(self) -> bool:
        """Whether the bundle has a hit detector (what `hits="auto"` uses)."""
        return "hit_detector" in self.manifest.components

    def resolve_hits(
        self, video: str | Path, start: float, hits: Literal["auto"] | Sequence[float] | None,
        *, should_cancel: Callable[[], bool] | None = None,
    ) -> tuple[list[float], HitsSource, list[str]]:
        """The hit times a generation uses, where they came from, and warnings.

        hits: "auto" (the bundle's detector; none if it has no detector), a list of times in seconds from the
        segment start (checked: numbers inside the segment), or an empty list / None (no hits: ambience).
        A bundle whose denoiser takes no hits ignores given times, with a warning."""
        if isinstance(hits, str):
            if hits != "auto":
                raise InvalidRequestError(f"hits must be 'auto', a list of times or an empty list, got {hits!r}")
            if not self.takes_hits:
                return [], "none", []
            if not self.has_hit_detector:
                return [], "none", [f"bundle '{self.manifest.name}' has no hit detector: generating without hits"]
            return self.detect_hits(video, start, should_cancel=should_cancel), "detected", []
        times = check_hits(list(hits or []), self.spec.duration)
        if not self.takes_hits:
            warn = [f"bundle '{self.manifest.name}' does not take hits: the {len(times)} given hit(s) are ignored"]
            return [], ("ignored" if times else "none"), (warn if times else [])
        return times, ("user" if times else "none"), []

    def detect_hits(self, video: str | Path, start: float, *,
                    should_cancel: Callable[[], bool] | None = None) -> list[float]:
        """Hit times (s from `start`) that the bundle's hit detector finds in the segment of `video`."""
        if not self.has_hit_detector:
            raise InvalidRequestError(f"bundle '{self.manifest.name}' has no hit detector; give the hits yourself")
        from engine.hit_detection import detect_segment_hits

        return detect_segment_hits(self, video, start, should_cancel=should_cancel)

    def prepare(self, video: str | Path, start: float, *, should_cancel: Callable[[], bool] | None = None) -> None:
        """Do the per-segment work of a generation ahead of it: decode and encode the segment's frames (and, with a
        hit detector, its motion features), into the engine's caches. The editor calls it when a segment is
        marked, so that Generate starts at the denoiser; the result of a later `generate` is the same."""
        self.video_features(video, start, should_cancel=should_cancel)
        if self.has_hit_detector and Path(video).suffix.lower() not in FEATURE_SUFFIXES:
            self.detect_hits(video, start, should_cancel=should_cancel)

    def describe(self) -> EngineInfo:
        """What is loaded and how it runs (for logs, the CLI and the app's status bar)."""
        return EngineInfo(
            bundle=str(self.bundle_dir),
            name=self.manifest.name,
            random_weights=self.manifest.random_weights,
            backend=self.backend.name,
            device=self.backend.device,
            providers=tuple(self.backend.providers_in_use),
            fallback_reason=getattr(self.backend, "fallback_reason", None),
            segment_seconds=self.spec.duration,
            sample_rate=self.spec.sample_rate,
            vocoder=self.manifest.components["vocoder"].type,
            output_rates=tuple(self.output_rates),
            default_output_rate=self.default_output_rate,
            bwe=self.manifest.components["bwe"].type if self.has_bwe else None,
        )

    def close(self) -> None:
        self.backend.close()

    # ---- generation ----------------------------------------------------------------------------------------
    def _clip_frames(self) -> int:
        """Frames the bundle's frame encoder sees as one clip (CAVP: 40, i.e. 10 s); 0 if it takes any number."""
        fe = self.manifest.components.get("frame_encoder")
        return int(fe.config.get("chunk_frames", 0)) if fe is not None else 0

    def video_features(
        self, video: str | Path, start: float, *, should_cancel: Callable[[], bool] | None = None,
        timings: dict[str, float] | None = None,
    ) -> tuple[np.ndarray, VideoInfo | None, list[str]]:
        """(num_frames, feature_dim) features of the segment at `start`, the video's info, and warnings.

        If `timings` is given, the seconds spent decoding ("video") and encoding frames ("features") go into it
        (both 0 when the segment's features were in `feature_cache`).
        """
        path = Path(video)
        try:
            key = file_key(path, round(float(start) * 1e6), self.spec.num_frames, self.spec.video_fps)
        except (OSError, ValueError, OverflowError):
            key = None  # not a readable file or not a time: the readers below say what is wrong
        cached = self.feature_cache.get(key) if key is not None else None
        if cached is not None:
            if timings is not None:
                timings["video"] = timings["features"] = 0.0
            return cached[0].copy(), cached[1], list(cached[2])
        feats, info, warnings = self._video_features(path, start, should_cancel=should_cancel, timings=timings)
        if key is not None:
            self.feature_cache.put(key, (feats.copy(), info, tuple(warnings)))
        return feats, info, warnings

    def _video_features(
        self, path: Path, start: float, *, should_cancel: Callable[[], bool] | None,
        timings: dict[str, float] | None,
    ) -> tuple[np.ndarray, VideoInfo | None, list[str]]:
        t0 = time.perf_counter()
        if path.suffix.lower() in FEATURE_SUFFIXES:
            feats, warnings = load_feature_file(path, start, self.spec)
            if self.manifest.condition != "cavp":
                warnings.append(
                    f"this bundle was trained on {self.manifest.condition} features, not on the given feature file"
                )
            return feats, None, warnings
        if not self.backend.has_frame_encoder:
            raise InvalidRequestError(
                f"bundle '{self.manifest.name}' has no frame encoder: pass precomputed {self.manifest.condition} "
                "features (.npy/.npz, T x 512 at 4 fps) instead of a video"
            )
        batch = read_segment_frames(path, start, self.spec, size=(224, 224))
        frames = batch.frames  # (T, 224, 224, 3)
        context = self._clip_frames()
        if context > self.spec.num_frames and not batch.held_last:
            # CAVP encodes clips of `context` frames (10 s) and its temporal convolutions see the frames after the
            # segment: read those too, as far as the video goes (a clip cut by the end is shorter, as in CAVP's own
            # extraction), and keep the segment's features only
            more = read_frames(path, start + np.arange(self.spec.num_frames, context) / self.spec.video_fps,
                               size=(224, 224))
            n_more = more.first_held_index if more.first_held_index is not None else len(more.frames)
            frames = np.concatenate([frames, more.frames[:n_more]])
        t1 = time.perf_counter()
        if should_cancel and should_cancel():
            raise Cancelled("generation cancelled")
        feats = self.backend.encode_frames(frames[None])[0][: self.spec.num_frames]  # (T, feature_dim)
        if timings is not None:
            timings["video"], timings["features"] = t1 - t0, time.perf_counter() - t1
        return feats, batch.info, list(batch.warnings)

    def latents_to_mel(self, z: np.ndarray) -> np.ndarray:
        """Scaled latents (N, C, H, W) -> normalised mels (N, n_mels, frames), float32 (the VAE decoder)."""
        mel = audio.from_mel_image(self.backend.decode_latents(np.asarray(z, np.float32)), self.spec)
        if self.spec.mel_kind == "diff-foley":
            mel = np.clip(mel, 0.0, 1.0)
        return mel.astype(np.float32)

    def mel_to_audio(
        self,
        mel: np.ndarray,
        seeds: list[int] | None = None,
        *,
        should_cancel: Callable[[], bool] | None = None,
        on_item: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Normalised mels (N, n_mels, frames) -> waveforms (N, num_samples) with the bundle's vocoder.

        Griffin-Lim (a bundle without a neural vocoder) runs one mel per worker thread (up to the backend's thread
        count; numpy and scipy release the GIL), seeded by `seeds[k]`, and calls `on_item(done, N)` as each finishes;
        `should_cancel` is checked before each mel starts and after each finishes.
        """
        mel = np.asarray(mel, np.float32)
        if self.backend.has_neural_vocoder:
            wavs = self.backend.vocode(mel)
        else:
            n_iter = int(self.manifest.components["vocoder"].config.get("n_iter", 32))
            seeds = list(seeds) if seeds is not None else list(range(len(mel)))
            workers = max(1, min(len(mel), int(getattr(self.backend, "threads", None) or cpu_threads())))

            def one(k: int) -> np.ndarray:
                if should_cancel is not None and should_cancel():
                    raise Cancelled("generation cancelled")
                return audio.griffin_lim(mel[k], self.spec, n_iter=n_iter, seed=seeds[k])

            out: list[np.ndarray | None] = [None] * len(mel)
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="griffin-lim") as pool:
                futures = {pool.submit(one, k): k for k in range(len(mel))}
                try:
                    for done, fut in enumerate(as_completed(futures), start=1):
                        out[futures[fut]] = fut.result()
                        if should_cancel is not None and should_cancel():
                            raise Cancelled("generation cancelled")
                        if on_item is not None:
                            on_item(done, len(mel))
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
            wavs = np.stack(out)
        return audio.fit_length(np.asarray(wavs, dtype=np.float32), self.spec.num_samples)

    def generate(
        self,
        video: str | Path,
        start: float = 0.0,
        *,
        candidates: int = 4,
        seed: int = 0,
        steps: int | None = None,
        guidance: float | None = None,
        hits: Literal["auto"] | Sequence[float] | None = "auto",
        sample_rate: int | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
        guidance_interval: tuple[float, float] | Literal["default"] | None = "default",
        solver_order: int | None = None,
        quality: str = "final",
    ) -> GenerationResult:
        """Generate `candidates` takes of Foley for the segment of `video` starting at `start` seconds.

        `video` is a video file (anything PyAV decodes) or a precomputed feature file (.npy/.npz, T x 512).
        Candidate k draws its initial noise from seed + k. Raises `Cancelled` if `should_cancel()` turns true.
        hits: where the sounds start, for a hit-aware bundle (`resolve_hits`): "auto" (detected), a list of times
        in seconds from `start`, or [] (none). Each take's settings record "hits" and "hits_source".
        sample_rate: the takes' rate, one of `output_rates` (None: `default_output_rate`); the settings record it,
        the generated rate and the `rate_stage` that made it.
        guidance_interval: (lo, hi) noise levels σ/α where guidance applies (`sample_dpmpp_2m`), None for every
        step, "default" for the bundle's sampler default (the shipped model's: (0.28, 5.42); MDSGen's: every step).
        solver_order: 2 (DPM-Solver++(2M)) or 3 (3M); None: the bundle's (2).
        quality: a name of `engine.spec.QUALITIES`: "final" (the bundle's sampler) or "draft" (15 steps, guidance
        interval: faster, a little worse); explicit steps, guidance_interval and solver_order override it. The
        settings record it.
        """
        if quality not in QUALITIES:
            raise InvalidRequestError(f"quality must be one of {', '.join(QUALITIES)}, got {quality!r}")
        defaults = {**self.manifest.sampler_defaults, **QUALITIES[quality]}
        if isinstance(guidance_interval, str):
            gi = defaults.get("guidance_interval")
            guidance_interval = (float(gi[0]), float(gi[1])) if gi else None
        cfg = SamplerConfig(
            steps=int(steps if steps is not None else defaults["steps"]),
            guidance=float(guidance if guidance is not None else defaults["guidance"]),
            guidance_power=float(defaults.get("guidance_power", SamplerConfig.guidance_power)),
            candidates=candidates,
            seed=seed,
            guidance_interval=guidance_interval,
            solver_order=int(solver_order if solver_order is not None else defaults.get("solver_order",
                                                                                          SamplerConfig.solver_order)),
        )
        if not np.isfinite(start) or start < 0:
            raise InvalidRequestError(f"start must be a time in seconds >= 0, got {start}")
        out_rate = self.default_output_rate if sample_rate is None else sample_rate
        if isinstance(out_rate, bool) or not isinstance(out_rate, (int, np.integer)):
            raise InvalidRequestError(f"sample_rate must be an integer in Hz, got {sample_rate!r}")
        out_rate = int(out_rate)
        self.rate_stage(out_rate)  # checked before any work
        cancel = should_cancel or (lambda: False)
        timings: dict[str, float] = {}

        def report(stage: str, within: float, message: str, step: int = 0, total: int = 0) -> None:
            if on_progress is not None:
                frac = _STAGE_START[stage] + _STAGE_WEIGHTS[stage] * min(max(within, 0.0), 1.0)
                on_progress(Progress(stage, frac, message, step, total))

        def check() -> None:
            if cancel():
                raise Cancelled("generation cancelled")

        # 1-2. video -> features -> condition
        t_start = t0 = time.perf_counter()
        report("video", 0.0, "reading video frames")
        timings["video"] = timings["features"] = 0.0
        feats, info, warnings = self.video_features(video, start, should_cancel=cancel, timings=timings)
        check()
        t0 = time.perf_counter()
        hit_times, hits_source, hit_warnings = self.resolve_hits(video, start, hits, should_cancel=cancel)
        warnings += hit_warnings
        timings["hits"] = time.perf_counter() - t0
        check()
        report("features", 1.0, "video features ready")
        t0 = time.perf_counter()
        track = None
        if self.takes_hits:
            lines, slots = hit_shape(self.manifest.components["denoiser"].config)
            track = hit_track(hit_times, self.spec.duration, lines, slots)[None]  # (1, lines, slots)
        y = self.backend.encode_conditions(feats[None].astype(np.float32), track)  # (1, *condition_shape)
        timings["features"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        y_cond = np.repeat(y, cfg.candidates, axis=0)  # (N, D)
        y_pair = np.concatenate([y_cond, np.zeros_like(y_cond)], axis=0)  # (2N, D): [cond; null]

        # 3. sampling, all candidates at once
        seeds = cfg.candidate_seeds()
        x_T = np.stack(
            [np.random.default_rng(s).standard_normal(self.spec.latent_shape, dtype=np.float32) for s in seeds]
        )  # (N, C, H, W)

        def denoise(x: np.ndarray, t: np.ndarray, guided: bool) -> np.ndarray:
            return self.backend.denoise(x, t, y_pair if guided else y_cond)

        def on_step(i: int, n: int) -> None:
            report("denoise", i / n, f"denoising step {i}/{n}", i, n)

        report("denoise", 0.0, f"denoising step 0/{cfg.steps}", 0, cfg.steps)
        z = sample_dpmpp_2m(
            x_T, denoise, self._schedule, steps=cfg.steps, guidance=cfg.guidance,
            guidance_power=cfg.guidance_power, guidance_interval=cfg.guidance_interval,
            solver_order=cfg.solver_order, on_step=on_step, should_cancel=cancel,
        )
        timings["denoise"] = time.perf_counter() - t0
        check()

        # 4. latent -> mel
        t0 = time.perf_counter()
        report("decode", 0.0, "decoding mel spectrograms")
        mel = self.latents_to_mel(z)  # (N, n_mels, frames)
        timings["decode"] = time.perf_counter() - t0
        check()

        # 5. mel -> waveform
        t0 = time.perf_counter()
        report("vocode", 0.0, "making waveforms")
        wavs = self.mel_to_audio(
            mel, seeds, should_cancel=cancel,
            on_item=lambda k, n: report("vocode", k / n, f"Griffin-Lim {k}/{n}"),
        )
        timings["vocode"] = time.perf_counter() - t0
        check()

        # 6. the output rate (48 kHz: the bandwidth extension, or resampling for a bundle without one)
        t0 = time.perf_counter()
        report("extend", 0.0, f"{out_rate // 1000} kHz output")
        wavs, rate_stage = self.to_output_rate(wavs, out_rate)
        timings["extend"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - t_start
        report("extend", 1.0, "done")
        if rate_stage == RATE_STAGE_RESAMPLE:
            warnings.append(f"bundle '{self.manifest.name}' has no bandwidth extension: {out_rate} Hz by plain "
                            f"resampling, nothing above {self.spec.sample_rate // 2} Hz")

        settings_common = {
            "bundle": self.manifest.name,
            "video": str(video),
            "start": float(start),
            "duration": self.spec.duration,
            "steps": cfg.steps,
            "guidance": cfg.guidance,
            "guidance_power": cfg.guidance_power,
            "guidance_interval": list(cfg.guidance_interval) if cfg.guidance_interval else None,
            "solver_order": cfg.solver_order,
            "quality": quality,
            "candidates": cfg.candidates,
            "backend": self.backend.name,
            "vocoder": self.manifest.components["vocoder"].type,
            "hits": list(hit_times),
            "hits_source": hits_source,
            "sample_rate": out_rate,
            "generated_rate": self.spec.sample_rate,
            "rate_stage": rate_stage,
        }
        limited = [audio.limit_peak(w) for w in wavs]  # no take leaves the engine beyond full scale
        cands = [
            Candidate(index=k, seed=s, audio=limited[k][0], mel=mel[k], sample_rate=out_rate,
                      settings={**settings_common, "seed": s, "candidate": k,
                                "peak_gain_db": round(limited[k][1], 2)})
            for k, s in enumerate(seeds)
        ]
        return GenerationResult(
            candidates=cands, video=str(video), start=float(start), duration=self.spec.duration,
            sample_rate=out_rate, settings={**settings_common, "seed": cfg.seed},
            video_info=info, warnings=warnings, timings=timings,
        )


def default_bundle_dir() -> Path:
    """The shipped default bundle (resources/models/default beside the packages)."""
    return Path(__file__).resolve().parent.parent / "resources" / "models" / "default"


def load_engine(
    bundle: str | Path | None = None,
    *,
    backend: BackendKind | str = BackendKind.AUTO,
    device: str = "auto",
    threads: int | None = None,
    verify_files: bool = True,
    backend_options: dict[str, Any] | None = None,
) -> FoleyEngine:
    """Load a bundle (default: the shipped one) into an engine, once; keep it for every generation.

    backend: "auto" (ONNX Runtime when the bundle has graphs and onnxruntime is installed, else torch), "onnx" or
    "torch". device: "auto", "cpu", "cuda" or "cuda:N". backend_options: backend-specific settings (ONNX:
    precision "auto"/"fp32"/"int8", optimization "disable"/"basic"/"extended"/"all").
    """
    bundle_dir = Path(bundle) if bundle is not None else default_bundle_dir()
    if bundle is None and not (bundle_dir / "manifest.json").is_file():
        raise BundleError(
            f"no default model bundle is installed at {bundle_dir}; pass a bundle folder "
            "(e.g. one made by `python -m training.run --config tiny`) with --bundle"
        )
    manifest = load_manifest(bundle_dir, verify_files=verify_files)
    if manifest.random_weights:
        log.info("bundle %s holds RANDOM weights (a test bundle): its output is noise, not Foley", bundle_dir)
    be = get_backend(backend, bundle_dir, manifest, device=device, threads=threads, **(backend_options or {}))
    return FoleyEngine(bundle_dir, manifest, be)
