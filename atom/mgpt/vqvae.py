"""The MotionGPT motion tokeniser: a 1-D convolutional VQ-VAE over normalised HumanML3D features.

Layout (MotionGPT's mGPT/archs/mgpt_vq.py, the T2M-GPT VQ-VAE; docs/motiongpt.md), with module
names chosen so the state dict matches the released
checkpoint key for key (prefix `vae.`):

  encoder.model: 0 Conv(in->width,k3) | 1 ReLU | 2..(1+down) [0 Conv(k4,s2,p1), 1 Resnet1D] | Conv(width->code_dim,k3)
  decoder.model: 0 Conv(code_dim->width,k3) | 1 ReLU | 2..(1+down) [0 Resnet1D, 1 Upsample x2, 2 Conv(k3)]
                 | Conv(width,width,k3) | ReLU | Conv(width->in,k3)
  Resnet1D.model: residual blocks with dilations rate^(depth-1) .. 1 (9, 3, 1 by default), each
                  ReLU -> conv1 (k3, dilation d, padding d) -> ReLU -> conv2 (k1) -> + input.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from atom.fields import check_fields
from atom.mgpt.quantizer import EMAQuantizer


@dataclass(frozen=True)
class VQVAEConfig:
    input_dim: int = 263
    width: int = 512
    code_dim: int = 512
    num_codes: int = 512
    down_t: int = 2  # each stride-2 stage halves time: 2 stages -> 4 frames per code
    res_depth: int = 3
    dilation_rate: int = 3
    mu: float = 0.99

    def __post_init__(self) -> None:
        for name in ("input_dim", "width", "code_dim", "num_codes", "down_t", "res_depth", "dilation_rate"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"VQVAEConfig.{name} must be >= 1, got {getattr(self, name)}")

    @property
    def frames_per_token(self) -> int:
        return 2**self.down_t

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "VQVAEConfig":
        check_fields(cls, d, "VQ-VAE config")
        return cls(**d)


class ResBlock(nn.Module):
    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.conv1 = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class Resnet1D(nn.Module):
    def __init__(self, width: int, depth: int, rate: int):
        super().__init__()
        # Largest dilation first (9, 3, 1), in the encoder and the decoder alike.
        self.model = nn.Sequential(*[ResBlock(width, rate**d) for d in reversed(range(depth))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Encoder(nn.Module):
    def __init__(self, c: VQVAEConfig):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(c.input_dim, c.width, 3, padding=1), nn.ReLU()]
        for _ in range(c.down_t):
            layers.append(
                nn.Sequential(nn.Conv1d(c.width, c.width, 4, stride=2, padding=1), Resnet1D(c.width, c.res_depth, c.dilation_rate))
            )
        layers.append(nn.Conv1d(c.width, c.code_dim, 3, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Decoder(nn.Module):
    def __init__(self, c: VQVAEConfig):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(c.code_dim, c.width, 3, padding=1), nn.ReLU()]
        for _ in range(c.down_t):
            layers.append(
                nn.Sequential(
                    Resnet1D(c.width, c.res_depth, c.dilation_rate),
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv1d(c.width, c.width, 3, padding=1),
                )
            )
        layers += [nn.Conv1d(c.width, c.width, 3, padding=1), nn.ReLU(), nn.Conv1d(c.width, c.input_dim, 3, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@dataclass
class VQVAEOutput:
    recon: torch.Tensor  # (B, T, input_dim), normalised features
    codes: torch.Tensor  # (B, T / frames_per_token)
    commit_loss: torch.Tensor
    perplexity: torch.Tensor


class VQVAE(nn.Module):
    def __init__(self, config: VQVAEConfig | None = None):
        super().__init__()
        self.config = config or VQVAEConfig()
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)
        self.quantizer = EMAQuantizer(self.config.num_codes, self.config.code_dim, self.config.mu)

    def _check_features(self, x: torch.Tensor) -> None:
        c = self.config
        if x.ndim != 3 or x.shape[-1] != c.input_dim:
            raise ValueError(
                f"VQ-VAE expects normalised features of shape (B, T, {c.input_dim}), got {tuple(x.shape)}; "
                "a different last dimension means a different feature layout (HumanML3D uses 263)"
            )
        if x.shape[1] < c.frames_per_token or x.shape[1] % c.frames_per_token:
            raise ValueError(
                f"VQ-VAE needs T to be a positive multiple of {c.frames_per_token} frames, got T={x.shape[1]}; "
                f"crop the clip to a multiple of {c.frames_per_token}"
            )

    def forward(self, x: torch.Tensor) -> VQVAEOutput:
        self._check_features(x)
        z = self.encoder(x.permute(0, 2, 1))
        q, codes, commit, perplexity = self.quantizer(z)
        recon = self.decoder(q).permute(0, 2, 1)
        return VQVAEOutput(recon, codes, commit, perplexity)

    @torch.no_grad()
    def encode(self, features_norm: torch.Tensor) -> torch.Tensor:
        """(B, T, input_dim) normalised features -> (B, T / frames_per_token) code indices."""
        self._check_features(features_norm)
        z = self.encoder(features_norm.permute(0, 2, 1))
        b, c, t = z.shape
        return self.quantizer.quantize(z.permute(0, 2, 1).reshape(-1, c)).view(b, t)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, N) code indices -> (B, N * frames_per_token, input_dim) normalised features."""
        if codes.ndim == 1:
            codes = codes[None]
        if codes.ndim != 2 or codes.shape[1] < 1:
            raise ValueError(f"decode expects codes of shape (B, N) with N >= 1, got {tuple(codes.shape)}")
        codes = codes.long()
        if int(codes.min()) < 0 or int(codes.max()) >= self.config.num_codes:
            raise ValueError(f"codes must lie in 0..{self.config.num_codes - 1}, got {int(codes.min())}..{int(codes.max())}")
        q = self.quantizer.dequantize(codes).permute(0, 2, 1)
        return self.decoder(q).permute(0, 2, 1)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
