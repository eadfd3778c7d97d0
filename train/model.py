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
TOPOLOGIES = ("hyperres", "unet")


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
    # "hyperres" (the seed's single-scale body) or "unet": `depth` stride-2 levels below the head's resolution,
    # channels doubling at each, `blocks` residual blocks at every level on the way down, at the bottom and on
    # the way up, skips added (see `LevelNet`)
    topology: str = "hyperres"
    depth: int = 0
    # "constant" (the seed: every conv has a constant bias) or "level" (shift form only): no constant bias
    # anywhere, every conv's bias is s * c (the plain convs too). With the unit output gate the network is then
    # positively homogeneous in the image and the strength together, f(k*y, k*s) = k*f(y, s), as a bias-free
    # denoiser is in the image: noise of any level is the same problem at another contrast, and the body needs
    # no 1/s gain, which bias shifts can only build by switching units (the shift form's dead band). The image
    # enters less mid-grey (0.5), so the scaling is about grey: f(g + k*(y - g), k*s) = k*f(y, s), g = 0.5
    biases: str = "constant"
    # the head conv's form: "plain" (the seed: the level does not reach it) or "affine" (W = s*A + B, b = s*a + c:
    # the features the body sees can change their gain with the level, at one more head conv, about 1 % of
    # `unet-fast`'s MACs)
    head: str = "plain"

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
        if self.biases not in ("constant", "level"):
            raise UserError(f"biases must be constant or level, got {self.biases!r}")
        if self.biases == "level" and self.form != "shift":
            raise UserError("biases=level moves every bias with the level: it needs the shift form (--form shift; a "
                            f"dedicated --baseline-level model has no level), got form {self.form!r}")
        if self.head not in ("plain", "affine"):
            raise UserError(f"head must be plain or affine, got {self.head!r}")
        if self.head == "affine" and self.form == "plain":
            raise UserError("head=affine moves the head with the level: a dedicated --baseline-level model has no "
                            "level; drop --head affine")
        if self.head == "affine" and self.biases == "level":
            raise UserError("an affine head keeps its constant weights and bias: it does not go with biases=level")
        if self.scale not in (2, 4):
            raise UserError(f"scale must be 2 or 4 (the body's downsampling factor), got {self.scale}")
        if self.topology not in TOPOLOGIES:
            raise UserError(f"unknown topology {self.topology!r}; choose one of {', '.join(TOPOLOGIES)}")
        if self.topology == "unet" and not (1 <= self.depth <= 4 and self.tail_channels == 0):
            raise UserError(f"a unet needs depth 1-4 and no tail channels, got depth {self.depth}, tail_channels "
                            f"{self.tail_channels}")
        if self.topology == "hyperres" and self.depth:
            raise UserError(f"depth is a unet setting; the hyperres topology takes none, got {self.depth}")

    @property
    def grid(self) -> int:
        """The network's stride: input sizes that are multiples of it run without padding."""
        return self.scale * 2 ** self.depth

    @property
    def receptive_field(self) -> int:
        """The receptive field in input pixels (one side)."""
        r = self.scale
        if self.topology == "hyperres":
            return (2 * r - 1) + 2 * (2 * self.blocks + 2) * r + (4 if self.tail_channels else 0)
        field, step = 2 * r - 1, r  # head; then each 3x3 conv adds 2 * its input stride
        for _ in range(self.depth):  # blocks, then the stride-2 down conv
            field += 2 * 2 * self.blocks * step + 2 * step
            step *= 2
        field += 2 * 2 * self.blocks * step  # the bottom
        for _ in range(self.depth):
            step //= 2
            field += 2 * 2 * self.blocks * step
        return field + 2 * 2 * step  # the body conv and the output conv

    def to_dict(self) -> dict:
        """The fields, plus `grid` and `receptive_field` for the torch-free runtimes (ignored by `from_dict`)."""
        return {**asdict(self), "grid": self.grid, "receptive_field": self.receptive_field}

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
    # multi-scale: channels 16/32/64/128 at 1/2 .. 1/16 resolution (21.6 GMAC per 1080p frame, `fast`: 28.7)
    "unet-fast": ModelConfig(channels=16, blocks=1, tail_channels=0, topology="unet", depth=3),
    # channels 32/64/128 at 1/2 .. 1/8 resolution (61.7 GMAC per 1080p frame, `mobile`: 77.8)
    "unet-mobile": ModelConfig(channels=32, blocks=1, tail_channels=0, topology="unet", depth=2),
    "unet-tiny": ModelConfig(channels=8, blocks=1, tail_channels=0, topology="unet", depth=2),
}


# the architecture fields a training run may override on its preset (`python -m train --form ...`)
OVERRIDABLE = ("form", "channels", "blocks", "block_levels", "out_gate", "biases", "head")


def preset_for_arch(arch: dict) -> str | None:
    """The first preset that builds `arch` with at most its `OVERRIDABLE` fields overridden (None: none does)."""
    for name in PRESETS:
        try:
            cfg = preset(name, **{k: arch.get(k) for k in OVERRIDABLE})
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

    `const_bias=False` keeps b at zero (a buffer, not trained): shift is then conv(x, W) + s * c.
    """

    def __init__(self, cin: int, cout: int, form: str, k: int = 3, stride: int = 1, const_bias: bool = True):
        super().__init__()
        self.form, self.stride, self.padding = form, stride, k // 2
        self.weight = nn.Parameter(torch.empty(cout, cin, k, k))
        if const_bias:
            self.bias = nn.Parameter(torch.zeros(cout))
        else:
            self.register_buffer("bias", torch.zeros(cout))
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

    def __init__(self, c: int, form: str, levels: int = 2, const_bias: bool = True):
        super().__init__()
        self.conv1 = LevelConv2d(c, c, form if levels == 2 else "plain", const_bias=const_bias)
        self.conv2 = LevelConv2d(c, c, form, const_bias=const_bias)
        self.conv2.reset_parameters(gain=0.1)  # blocks start near identity: a stable deep residual trunk

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return NETWORK_OPS.block("block", self, x, s)


class Ops:
    """How `LevelNet.forward_strength` computes each step; the topology is written once, in `LevelNet`.

    These defaults are the network itself. The export graph (`export.graph`) overrides `level`, `block` and
    `shuffle` (folded strength factors, baked weights, the transposed-conv shuffle); the int8 simulation
    (`train.qat`) overrides `point`, `conv`, `level` and `add` (rounding at the int8 graph's points). `name` is
    the module's path in the network (`body.0.conv1`), or the name of the point.
    """

    def point(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return x

    def conv(self, name: str, m: nn.Conv2d, x: torch.Tensor, relu: bool = False) -> torch.Tensor:
        y = m(x)
        return F.relu(y) if relu else y

    def level(self, name: str, conv: LevelConv2d, x: torch.Tensor, s: torch.Tensor, relu: bool = False,
              last: bool = False) -> torch.Tensor:
        """A level conv at strength s; `last`: the output conv (its result goes straight to the float tail)."""
        y = conv(x, s)
        return F.relu(y) if relu else y

    def add(self, name: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b

    def block(self, name: str, block: ResBlock, y: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        z = self.level(f"{name}.conv1", block.conv1, y, s, relu=True)
        return self.add(f"{name}.add", y, self.level(f"{name}.conv2", block.conv2, z, s))

    def shuffle(self, name: str, net: LevelNet, x: torch.Tensor) -> torch.Tensor:
        return net.shuffles[name](x)


NETWORK_OPS = Ops()


class LevelNet(nn.Module):
    """The restoration network; `forward(image, level)` takes the level in the user's unit.

    topology "hyperres": the module docstring's. topology "unet": the same stride-r head, then per level i
    (0 .. depth-1, channels C*2^i) `blocks` residual blocks and a 3x3 stride-2 conv to the next level; `blocks` at
    the bottom; on the way up a 1x1 conv and PixelShuffle(2) (a 2x2 transposed conv) added to the level's skip,
    then `blocks` residual blocks; a 3x3 conv over the top level and the head's features, and the output level
    conv predicting r*r sub-pixels, as the `fast` preset does.
    """

    def __init__(self, cfg: ModelConfig, level_map: LevelMap):
        super().__init__()
        self.cfg, self.level_map = cfg, level_map
        c, t, form = cfg.channels, cfg.tail_channels, cfg.form
        r = cfg.scale
        cb = cfg.biases == "constant"
        # with level biases the topology's plain convs move their biases with the level too (shift, no constant)
        conv = (lambda a, b, k, stride=1: nn.Conv2d(a, b, k, stride=stride, padding=k // 2)) if cb else \
            (lambda a, b, k, stride=1: LevelConv2d(a, b, "shift", k, stride, const_bias=False))  # noqa: E731
        self.head = (LevelConv2d(cfg.in_channels, c, "affine", 2 * r - 1, stride=r) if cfg.head == "affine"
                     else conv(cfg.in_channels, c, 2 * r - 1, stride=r))
        block = lambda w: ResBlock(w, form, cfg.block_levels, const_bias=cb)  # noqa: E731
        self.body = nn.ModuleList(block(c << cfg.depth) for _ in range(cfg.blocks))  # unet: the bottom
        self.shuffles = nn.ModuleDict({"out": nn.PixelShuffle(r)})
        if cfg.topology == "unet":
            d = range(cfg.depth)
            self.down_blocks = nn.ModuleList(nn.ModuleList(block(c << i) for _ in range(cfg.blocks)) for i in d)
            self.down = nn.ModuleList(conv(c << i, c << (i + 1), 3, stride=2) for i in d)
            self.up = nn.ModuleList(conv(c << (i + 1), 4 * (c << i), 1) for i in d)
            self.up_blocks = nn.ModuleList(nn.ModuleList(block(c << i) for _ in range(cfg.blocks)) for i in d)
            self.shuffles.update({f"up_{i}": nn.PixelShuffle(2) for i in d})
        self.conv_body = conv(c, c, 3)
        tail_form = "plain" if cfg.residual == "none" or form == "plain" else "linear"
        if t:
            self.up = conv(c, r * r * t, 3)
            self.conv_tail = conv(t, t, 3)
            self.conv_out = LevelConv2d(t, cfg.in_channels, tail_form, const_bias=cb)
        else:  # no full-resolution convs: the last conv predicts r*r sub-pixels per output pixel
            self.conv_out = LevelConv2d(c, r * r * cfg.in_channels, tail_form, const_bias=cb)
        if cfg.residual == "global":
            self.conv_out.reset_parameters(gain=0.1)

    def shuffle_channels(self) -> dict[str, tuple[int, int]]:
        """Each PixelShuffle's name -> (its output channels, its factor), for exact transposed-conv replacements."""
        cfg = self.cfg
        out = {"out": (cfg.tail_channels or cfg.in_channels, cfg.scale)}
        return out | {f"up_{i}": (cfg.channels << i, 2) for i in range(cfg.depth)}

    def strength(self, level: torch.Tensor) -> torch.Tensor:
        """Strength (N,) from levels in the user's unit (scalar, (1,) or (N,)): `LevelMap.strength_of` on tensors."""
        level = level.reshape(-1).to(self.head.weight.dtype)
        return self.level_map.strength_of(level, lambda x, lo, hi: torch.clamp(x, min=lo, max=hi))

    def out_scale(self, s: torch.Tensor | None) -> torch.Tensor | None:
        """The output level conv's factor at strength s: s itself, or with `out_gate="unit"` min(1, s / s1)."""
        if self.cfg.out_gate == "strength" or s is None:
            return s
        lm = self.level_map
        s1 = lm.strength(lm.neutral + (1.0 if lm.a > 0 else -1.0))  # one unit from the neutral level
        return torch.clamp(s * (1.0 / s1), max=1.0)

    def forward(self, image: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        return self.forward_strength(image, self.strength(level))

    def forward_strength(self, x: torch.Tensor, s: torch.Tensor | None, ops: Ops = NETWORK_OPS) -> torch.Tensor:
        """The network at strength s ((N,), or None where `ops` bakes the level in), each step through `ops`."""
        h, w = x.shape[-2:]
        conv = self._conv
        image = ops.point("image", x)
        if self.cfg.biases == "level":  # homogeneous about mid-grey: no constant bias has to cancel the image's mean
            image = image - 0.5
        feat = conv(ops, "head", self.head, image, s)
        y = self._unet(feat, s, ops) if self.cfg.topology == "unet" else self._blocks("body", self.body, feat, s, ops)
        y = ops.add("feat_add", conv(ops, "conv_body", self.conv_body, y, s), feat)
        s_out = self.out_scale(s)
        if self.cfg.tail_channels:  # relu(shuffle(conv)) == shuffle(relu(conv)): the ReLU fuses into `up`
            y = ops.shuffle("out", self, conv(ops, "up", self.up, y, s, relu=True))
            y = ops.level("conv_out", self.conv_out, conv(ops, "conv_tail", self.conv_tail, y, s, relu=True), s_out,
                          last=True)
        else:
            y = ops.shuffle("out", self, ops.level("conv_out", self.conv_out, y, s_out, last=True))
        y = y[..., :h, :w]
        return x + y if self.cfg.residual == "global" else y

    @staticmethod
    def _conv(ops: Ops, name: str, m: nn.Module, x: torch.Tensor, s, relu: bool = False) -> torch.Tensor:
        """One of the topology's convs: plain, or a level conv (every conv with biases="level", an affine head)."""
        if isinstance(m, LevelConv2d):
            return ops.level(name, m, x, s, relu=relu)
        return ops.conv(name, m, x, relu=relu)

    @staticmethod
    def _blocks(name: str, blocks: nn.ModuleList, y: torch.Tensor, s, ops: Ops) -> torch.Tensor:
        for i, block in enumerate(blocks):
            y = ops.block(f"{name}.{i}", block, y, s)
        return y

    def _unet(self, y: torch.Tensor, s, ops: Ops) -> torch.Tensor:
        skips = []
        for i in range(self.cfg.depth):
            y = self._blocks(f"down_blocks.{i}", self.down_blocks[i], y, s, ops)
            skips.append(y)
            y = self._conv(ops, f"down.{i}", self.down[i], y, s)
        y = self._blocks("body", self.body, y, s, ops)
        for i in reversed(range(self.cfg.depth)):
            skip = skips[i]
            up = ops.shuffle(f"up_{i}", self, self._conv(ops, f"up.{i}", self.up[i], y, s))
            if up.shape[-2:] != skip.shape[-2:]:  # off the grid (eager only: exported graphs take on-grid sizes,
                up = up[..., : skip.shape[-2], : skip.shape[-1]]  # which the runtimes pad every frame to)
            y = ops.add(f"skip.{i}", up, skip)
            y = self._blocks(f"up_blocks.{i}", self.up_blocks[i], y, s, ops)
        return y


def convert_weights(src: LevelNet, cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """`src`'s weights as a state dict for an architecture that differs from it only in `form`, `block_levels`,
    `out_gate`, `head`, or is wider (`channels`) or deeper (`blocks`).

    Every tensor both share is copied; the level-only tensors the target adds (affine B, shift biases) start at
    zero. From linear to affine that is the same network at every strength (A = W, B = 0); from linear to shift or
    to one level conv per block it is the same network at strength 1 (the largest training level), which the
    fine-tuning then carries to the other levels.

    Growing is exact at every strength (`grow_weights`): a wider network keeps the source's channels first in
    every conv (new output channels at the end, which PixelShuffle maps to new channels too) with the new
    channels' outgoing weights zero; a deeper one adds residual blocks whose second conv is zero (identity).
    """
    if src.cfg.head == "affine" and cfg.head == "plain":
        raise UserError("cannot start a plain-head network from an affine-head checkpoint (its head depends on the "
                        "level); keep --head affine")
    if cfg.channels < src.cfg.channels or cfg.blocks < src.cfg.blocks:
        raise UserError(f"cannot start a network of {cfg.channels} channels and {cfg.blocks} blocks from one of "
                        f"{src.cfg.channels} channels and {src.cfg.blocks} blocks: a network can only grow")
    if replace(src.cfg, form=cfg.form, block_levels=cfg.block_levels, out_gate=cfg.out_gate, head=cfg.head,
               channels=cfg.channels, blocks=cfg.blocks) != cfg:
        raise UserError(f"cannot start a {cfg.to_dict()} network from a {src.cfg.to_dict()} checkpoint: only the "
                        "form, the level convs per block, the output gate, the head form, and more channels or "
                        "blocks may differ")
    target = LevelNet(cfg, src.level_map).state_dict()
    have = src.state_dict()
    if src.cfg.channels != cfg.channels or src.cfg.blocks != cfg.blocks:
        have = grow_weights(have, target)
    out = {}
    for name, t in target.items():
        if name in have and have[name].shape == t.shape:
            out[name] = have[name].detach().clone()
        elif name.endswith(("weight_b", "bias_b", "bias_level")):
            out[name] = torch.zeros_like(t)
        else:
            raise UserError(f"cannot convert the checkpoint: no tensor for {name}")
    if src.cfg.head == "plain" and cfg.head == "affine":  # the plain head is the level-free part: s*0 + W
        out["head.weight_b"], out["head.bias_b"] = out["head.weight"], out["head.bias"]
        out["head.weight"], out["head.bias"] = torch.zeros_like(out["head.weight"]), torch.zeros_like(out["head.bias"])
    return out


def grow_weights(have: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`have` (a state dict) embedded in the wider or deeper network whose freshly initialised state dict is
    `target`, the same function at every strength.

    A tensor of the source fills the leading corner of the target's: its output channels first, its input channels
    first. The new output channels keep their fresh initialisation (their weights random, their biases zero), so they
    carry features from the start; every new input channel's weights are zero, so nothing of them reaches the
    source's channels or the output until training moves those weights. A block the source lacks keeps its fresh
    first conv and gets a zero second conv: x + 0. Names only the source has are dropped by the caller."""
    out = {}
    for name, t in target.items():
        if name not in have:
            block = name.rsplit(".", 2)[0]  # body.1 of body.1.conv1.weight
            if ".conv" in name and not any(k.startswith(block + ".") for k in have):
                # a new residual block: fresh first conv, zero second conv (the block is the identity)
                out[name] = torch.zeros_like(t) if ".conv2." in name else t.detach().clone()
            continue  # a tensor the form adds to an existing conv: `convert_weights` starts it at zero
        old = have[name]
        if old.shape == t.shape or old.dim() != t.dim():
            out[name] = old
            continue
        new = t.detach().clone()
        if new.dim() == 4:  # conv weight (out, in, k, k): new inputs contribute nothing
            new[:, old.shape[1]:] = 0.0
        else:  # a bias: new channels start at zero
            new.zero_()
        new[tuple(slice(0, n) for n in old.shape)] = old
        out[name] = new
    return out


def build_model(cfg: ModelConfig, level_map: LevelMap) -> LevelNet:
    """Construct a randomly initialised `LevelNet`."""
    return LevelNet(cfg, level_map)


def count_params(cfg: ModelConfig) -> int:
    """Parameters of the network generated at one level (affine: one set, as in the paper's count)."""
    return sum(n for n, _ in _convs(cfg))


def count_macs(cfg: ModelConfig, height: int, width: int) -> int:
    """Multiply-accumulates of one forward pass on an H x W frame (convs only; affine at a fixed level)."""
    total = 0
    for (params, cout), stride in zip(_convs(cfg), _strides(cfg), strict=True):
        pixels = math.ceil(height / stride) * math.ceil(width / stride)
        total += pixels * (params - cout)  # weights only: one MAC per weight per output pixel
    return total


def _convs(cfg: ModelConfig) -> list[tuple[int, int]]:
    """(parameters, output channels) of every conv in forward order (affine: one set)."""
    c, t, i, r = cfg.channels, cfg.tail_channels, cfg.in_channels, cfg.scale
    conv = lambda a, b, k=3: (k * k * a * b + b, b)  # noqa: E731
    out = [conv(i, c, 2 * r - 1)]
    for lv in range(cfg.depth):
        out += [conv(c << lv, c << lv)] * 2 * cfg.blocks + [conv(c << lv, c << (lv + 1))]
    out += [conv(c << cfg.depth, c << cfg.depth)] * 2 * cfg.blocks
    for lv in reversed(range(cfg.depth)):
        out += [conv(c << (lv + 1), 4 * (c << lv), 1)] + [conv(c << lv, c << lv)] * 2 * cfg.blocks
    out.append(conv(c, c))
    return out + ([conv(c, r * r * t), conv(t, t), conv(t, i)] if t else [conv(c, r * r * i)])


def _strides(cfg: ModelConfig) -> list[int]:
    """The output stride (in input pixels) of each conv of `_convs`."""
    r, b = cfg.scale, 2 * cfg.blocks
    out = [r]
    for lv in range(cfg.depth):
        out += [r << lv] * b + [r << (lv + 1)]
    out += [r << cfg.depth] * b
    for lv in reversed(range(cfg.depth)):
        out += [r << (lv + 1)] + [r << lv] * b  # the 1x1 up conv runs before its shuffle
    out.append(r)
    return out + ([r, 1, 1] if cfg.tail_channels else [r])
