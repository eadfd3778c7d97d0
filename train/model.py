"""The level-scaled restoration network.

A level conv has weight l*W and bias l*b at strength l (the seed's linear form), computed exactly as
l * conv(x, W, b): constant weights, output scaled. The affine form of the published HyperRes code,
W(l) = l*A + B, is l * conv(x, A, a) + conv(x, B, b). "plain" convs ignore the level (dedicated
single-level baselines).

Topology (HyperRes): stride-2 3->C head, `blocks` residual blocks of two level convs, C->C conv +
skip, C->4T conv, PixelShuffle(2), T->T conv, T->3 conv. `scale=4` runs the body at quarter
resolution (a 7x7 stride-4 head, PixelShuffle(4)); `tail_channels=0` drops the full-resolution convs:
the last conv predicts the r*r sub-pixels of each output pixel (the "fast" preset: both, 64 channels so
the body is wider than the 48 values each quarter-resolution position predicts; 2.7x fewer MACs than
"mobile"). With `residual="global"` (the default) the
network predicts a residual added to its input and the final conv is a level conv, so strength 0
returns the input exactly. `residual="none"` with an affine body is the exact published topology.

Usage:
    model = build_model(PRESETS["mobile"], level_map)
    restored = model(noisy, torch.tensor([25.0]))       # level in the user's unit (sigma here)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from runtimes.core.errors import UserError
from runtimes.core.levels import LevelMap

FORMS = ("linear", "affine", "shift", "plain")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the network (see module docstring)."""

    channels: int = 32
    blocks: int = 6
    tail_channels: int = 16
    form: str = "linear"
    residual: str = "global"
    in_channels: int = 3
    scale: int = 2
    block_levels: int = 2  # level convs per residual block: 2 (both, the seed) or 1 (the second only)
    # the output conv's factor: "strength" (s, the seed) or "unit" (min(1, s / s1), s1 the strength one level unit
    # from the neutral level: 0 at level 0, exact; 1 from sigma 1 up, so the body need not grow a 1/s gain)
    out_gate: str = "strength"

    def __post_init__(self):
        if self.form not in FORMS:
            raise UserError(f"unknown form {self.form!r}; choose one of {', '.join(FORMS)}")
        if self.residual not in ("global", "none"):
            raise UserError(f"unknown residual {self.residual!r}; choose global or none")
        if min(self.channels, self.in_channels) < 1 or self.blocks < 0 or self.tail_channels < 0:
            raise UserError(f"--channels must be >= 1 and --blocks >= 0, got channels {self.channels}, blocks "
                            f"{self.blocks} (in_channels {self.in_channels}, tail_channels {self.tail_channels})")
        if self.block_levels not in (1, 2):
            raise UserError(f"block_levels must be 1 or 2 (level convs per residual block), got {self.block_levels}")
        if self.out_gate not in ("strength", "unit"):
            raise UserError(f"out_gate must be strength or unit, got {self.out_gate!r}")
        if self.scale not in (2, 4):
            raise UserError(f"scale must be 2 or 4 (the body's downsampling factor), got {self.scale}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


PRESETS: dict[str, ModelConfig] = {
    "paper": ModelConfig(channels=64, blocks=16, tail_channels=64),
    "mobile": ModelConfig(channels=32, blocks=6, tail_channels=16),
    "fast": ModelConfig(channels=64, blocks=2, tail_channels=0, scale=4),
    "hyperres": ModelConfig(channels=64, blocks=16, tail_channels=64, form="affine", residual="none"),
    "tiny": ModelConfig(channels=8, blocks=1, tail_channels=8),
}


def preset_for_arch(arch: dict) -> str | None:
    """The first preset that builds `arch` with at most its form, channels, blocks and block_levels overridden
    (None: none does)."""
    for name in PRESETS:
        try:
            cfg = preset(name, form=arch.get("form"), channels=arch.get("channels"), blocks=arch.get("blocks"),
                         block_levels=arch.get("block_levels"), out_gate=arch.get("out_gate"))
        except UserError:
            continue
        if cfg.to_dict() == {**cfg.to_dict(), **arch}:
            return name
    return None


def preset(name: str, **overrides) -> ModelConfig:
    """A named preset with optional field overrides (None values are ignored)."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


class LevelConv2d(nn.Module):
    """A 3x3 (or k x k) convolution whose weights are generated from the strength.

    linear: y = s * conv(x, W, b)            == conv(x, s*W) + s*b   (exact)
    affine: y = s * conv(x, A, a) + conv(x, B, b)
    shift:  y = conv(x, W, b) + s * c        the affine form with A = 0 but its bias: the level moves the
            biases only (what FFDNet's noise-level input channel does to its first conv), at no extra conv
    plain:  y = conv(x, W, b)                (level ignored)
    """

    def __init__(self, cin: int, cout: int, form: str, k: int = 3, stride: int = 1):
        super().__init__()
        self.form, self.stride, self.padding = form, stride, k // 2
        self.weight = nn.Parameter(torch.empty(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout))
        if form == "affine":
            self.weight_b = nn.Parameter(torch.empty(cout, cin, k, k))
            self.bias_b = nn.Parameter(torch.zeros(cout))
        if form == "shift":
            self.bias_level = nn.Parameter(torch.zeros(cout))
        self.reset_parameters()

    def reset_parameters(self, gain: float = 1.0) -> None:
        """He initialisation times `gain`; affine halves each set's variance so A + B is He at strength 1."""
        if self.form == "affine":
            gain /= math.sqrt(2.0)
        for w in (self.weight, getattr(self, "weight_b", None)):
            if w is not None:
                nn.init.kaiming_normal_(w, a=0.0, nonlinearity="relu")
                w.data.mul_(gain)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        if self.form == "plain":
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)
        s4 = s.reshape(-1, 1, 1, 1).to(x.dtype)
        if self.form == "linear":
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding) * s4
        if self.form == "shift":
            shift = s4 * self.bias_level.reshape(1, -1, 1, 1)
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding) + shift
        w = torch.cat([self.weight, self.weight_b])
        b = torch.cat([self.bias, self.bias_b])
        ya, yb = F.conv2d(x, w, b, self.stride, self.padding).chunk(2, dim=1)
        return ya * s4 + yb


class ResBlock(nn.Module):
    """x + conv2(relu(conv1(x))): both level convs, or (`levels=1`) a plain conv1 and a level conv2.

    With both convs linear the branch scales as s^2 (ReLU is positively homogeneous): at sigma 5 of 75 a
    block carries 0.4 % of its sigma-75 weight. One level conv per block makes it scale as s.
    """

    def __init__(self, c: int, form: str, levels: int = 2):
        super().__init__()
        self.conv1 = LevelConv2d(c, c, form if levels == 2 else "plain")
        self.conv2 = LevelConv2d(c, c, form)
        self.conv2.reset_parameters(gain=0.1)  # blocks start near identity: a stable deep residual trunk

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x, s)), s)


class LevelNet(nn.Module):
    """The restoration network; `forward(image, level)` takes the level in the user's unit."""

    def __init__(self, cfg: ModelConfig, level_map: LevelMap):
        super().__init__()
        self.cfg, self.level_map = cfg, level_map
        c, t, form = cfg.channels, cfg.tail_channels, cfg.form
        self.register_buffer("level_a", torch.tensor([level_map.a]), persistent=False)
        self.register_buffer("level_b", torch.tensor([level_map.b]), persistent=False)
        r = cfg.scale
        self.head = nn.Conv2d(cfg.in_channels, c, 2 * r - 1, stride=r, padding=r - 1)
        self.body = nn.ModuleList(ResBlock(c, form, cfg.block_levels) for _ in range(cfg.blocks))
        self.conv_body = nn.Conv2d(c, c, 3, padding=1)
        self.shuffle = nn.PixelShuffle(r)
        tail_form = "plain" if cfg.residual == "none" or form == "plain" else "linear"
        if t:
            self.up = nn.Conv2d(c, r * r * t, 3, padding=1)
            self.conv_tail = nn.Conv2d(t, t, 3, padding=1)
            self.conv_out = LevelConv2d(t, cfg.in_channels, tail_form)
        else:  # no full-resolution convs: the last conv predicts r*r sub-pixels per output pixel
            self.conv_out = LevelConv2d(c, r * r * cfg.in_channels, tail_form)
        if cfg.residual == "global":
            self.conv_out.reset_parameters(gain=0.1)

    def strength(self, level: torch.Tensor) -> torch.Tensor:
        """Strength (N,) from levels in the user's unit (scalar, (1,) or (N,))."""
        s = level.reshape(-1).to(self.level_a.dtype) * self.level_a + self.level_b
        cap = self.level_map.max_strength  # levels past the largest training level act as it (runtimes.core.levels)
        s = s if cap is None else torch.clamp(s, max=cap)
        if not self.level_map.knots:
            return s
        out = None  # the calibration curve (train.calibrate): constants and clamps, so every exporter folds it in
        for i, (slope, start, width) in enumerate(self.level_map.segments()):
            d = s - start
            d = d if i == 0 else torch.clamp(d, min=0.0)
            d = d if width is None else torch.clamp(d, max=width)
            out = d * slope if out is None else out + d * slope
        return out

    def out_scale(self, s: torch.Tensor) -> torch.Tensor:
        """The output level conv's factor at strength s: s itself, or with `out_gate="unit"` min(1, s / s1)."""
        if self.cfg.out_gate == "strength":
            return s
        lm = self.level_map
        s1 = lm.strength(lm.neutral + (1.0 if lm.a > 0 else -1.0))  # one unit from the neutral level
        return torch.clamp(s * (1.0 / s1), max=1.0)

    def forward(self, image: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        return self.forward_strength(image, self.strength(level))

    def forward_strength(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        feat = self.head(x)
        y = feat
        for block in self.body:
            y = block(y, s)
        y = self.conv_body(y) + feat
        if self.cfg.tail_channels:
            y = F.relu(self.shuffle(self.up(y)))
            y = self.conv_out(F.relu(self.conv_tail(y)), self.out_scale(s))
        else:
            y = self.shuffle(self.conv_out(y, self.out_scale(s)))
        y = y[..., :h, :w]
        return x + y if self.cfg.residual == "global" else y


def convert_weights(src: LevelNet, cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """`src`'s weights as a state dict for an architecture that differs from it only in `form` or `block_levels`.

    Every tensor both share is copied; the level-only tensors the target adds (affine B, shift biases) start at
    zero. From linear to affine that is the same network at every strength (A = W, B = 0); from linear to shift or
    to one level conv per block it is the same network at strength 1 (the largest training level), which the
    fine-tuning then carries to the other levels.
    """
    if replace(src.cfg, form=cfg.form, block_levels=cfg.block_levels, out_gate=cfg.out_gate) != cfg:
        raise UserError(f"cannot start a {cfg.to_dict()} network from a {src.cfg.to_dict()} checkpoint: only the "
                        "form and the level convs per block may differ")
    target = LevelNet(cfg, src.level_map).state_dict()
    have = src.state_dict()
    out = {}
    for name, t in target.items():
        if name in have and have[name].shape == t.shape:
            out[name] = have[name].detach().clone()
        elif name.endswith(("weight_b", "bias_b", "bias_level")):
            out[name] = torch.zeros_like(t)
        else:
            raise UserError(f"cannot convert the checkpoint: no tensor for {name}")
    return out


def build_model(cfg: ModelConfig, level_map: LevelMap) -> LevelNet:
    """Construct a randomly initialised `LevelNet`."""
    return LevelNet(cfg, level_map)


def count_params(cfg: ModelConfig) -> int:
    """Parameters of the network generated at one level (affine: one set, as in the paper's count)."""
    c, t, i, r = cfg.channels, cfg.tail_channels, cfg.in_channels, cfg.scale
    conv = lambda a, b, k=3: k * k * a * b + b  # noqa: E731
    body = conv(i, c, 2 * r - 1) + 2 * cfg.blocks * conv(c, c) + conv(c, c)
    return body + (conv(c, r * r * t) + conv(t, t) + conv(t, i) if t else conv(c, r * r * i))


def count_macs(cfg: ModelConfig, height: int, width: int) -> int:
    """Multiply-accumulates of one forward pass on an H x W frame (convs only; affine at a fixed level)."""
    c, t, i, r = cfg.channels, cfg.tail_channels, cfg.in_channels, cfg.scale
    low = math.ceil(height / r) * math.ceil(width / r)
    full = r * r * low
    per_low = (2 * r - 1) ** 2 * i * c + 9 * (2 * cfg.blocks * c * c + c * c + c * r * r * (t or i))
    return low * per_low + full * 9 * (t * t + t * i)
