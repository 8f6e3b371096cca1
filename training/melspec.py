"""The engine's mel front end (engine.audio.wav_to_mel / mel_spectrogram) in torch, batched and differentiable.

Used for the vocoder's mel loss and for exact segment mels when latents are cached. Same STFT (Hann, centred,
reflect padding), same Slaney filterbank (taken from engine.audio), same compression; tested against the numpy
version.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.audio import mel_basis
from engine.spec import SegmentSpec


class TorchMel(nn.Module):
    """waveform (B, n) -> normalised mel (B, n_mels, n // hop + 1) (all frames of the centred STFT)."""

    def __init__(self, spec: SegmentSpec) -> None:
        super().__init__()
        self.spec = spec
        self.register_buffer("basis", torch.from_numpy(mel_basis(spec)), persistent=False)  # (n_mels, F)
        self.register_buffer("window", torch.hann_window(spec.win_length), persistent=False)

    def magnitude(self, wav: torch.Tensor) -> torch.Tensor:
        s = self.spec
        spec = torch.stft(wav.float(), n_fft=s.n_fft, hop_length=s.hop_length, win_length=s.win_length,
                          window=self.window, center=True, pad_mode="reflect", return_complex=True)
        return spec.abs()  # (B, F, frames)

    def linear_mel(self, wav: torch.Tensor) -> torch.Tensor:
        return torch.einsum("mf,bft->bmt", self.basis, self.magnitude(wav))  # (B, n_mels, frames)

    def compress(self, mel_linear: torch.Tensor) -> torch.Tensor:
        m = mel_linear.clamp(min=1e-5)
        if self.spec.mel_kind == "audioldm":
            return torch.log(m)
        db = 20.0 * torch.log10(m) - 20.0
        return ((db + 100.0) / 100.0).clamp(0.0, 1.0)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.compress(self.linear_mel(wav))

    def segment(self, wav: torch.Tensor) -> torch.Tensor:
        """A segment's mel as the engine makes it: (B, num_samples) -> (B, n_mels, mel_frames)."""
        n = self.spec.num_samples
        if wav.shape[-1] < n:
            wav = torch.nn.functional.pad(wav, (0, n - wav.shape[-1]))
        return self(wav[..., :n])[..., : self.spec.mel_frames]


def decompress(mel: torch.Tensor, spec: SegmentSpec) -> torch.Tensor:
    """Normalised mel -> linear magnitude mel (engine.audio.decompress in torch)."""
    if spec.mel_kind == "audioldm":
        return torch.exp(mel)
    return torch.pow(10.0, (mel * 100.0 - 100.0 + 20.0) / 20.0)
