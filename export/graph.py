"""Export graphs: small torch wrappers over a loaded `LevelNet`, shared by every exporter.

Three level modes (DESIGN §2), all with the level-to-strength map (a*level + b) inside the graph:
    folded   constant W and b, each level conv's output multiplied by the strength (the default). In a
             linear residual block the two factors meet after the second conv: for s >= 0,
             s*conv2(relu(s*conv1(y))) == s^2 * conv2_W(relu(conv1(y))) + s*b2, so the block costs one
             scale and one bias add instead of two scales, and conv1 fuses with its ReLU (exact up to
             float rounding; the graph clamps the strength at 0, which every valid level satisfies).
             The factors are per channel, so that a runtime which binds the level as a constant
             (onnxruntime, `OnnxRunner(bind_level=True)`) folds them into the convs
    weights  the literal form: Mul(strength, W) feeds a conv whose weight is a runtime tensor
    fixed    the level baked into constant weights; the graph has no level input
Affine level convs in folded mode are one constant conv with 2x outputs and a scalar mix; shift level convs
(level-moved biases) a constant conv and a per-channel multiply-add.

Usage:
    graph = build_graph(model, GraphSpec(mode="folded"))
    restored = graph(image, torch.tensor([25.0]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from runtimes.core.errors import UserError
from train.model import LevelConv2d, LevelNet, Ops

MODES = ("folded", "weights", "fixed")
IO_TYPES = ("float", "uint8")


@dataclass(frozen=True)
class GraphSpec:
    """How to wrap the network for export.

    Attributes:
        mode: folded, weights or fixed (see module docstring).
        level: the baked level in the user's unit (fixed mode only).
        nhwc: image input and output in (N, H, W, 3) layout instead of (N, 3, H, W).
        io: "float" (float32 in [0, 1]) or "uint8" (0-255 in, rounded and clamped 0-255 out: camera bytes).
        shuffle: "pixel" (PixelShuffle) or "deconv" (the exact stride-2 transposed-conv replacement).
        fold: folded mode only: "block" (one strength factor per linear residual block, the default) or
            "conv" (one per level conv; int8 graphs use it: the block form quantizes the unscaled branch,
            which cost 0.7 dB of parity at the top level).
    """

    mode: str = "folded"
    level: float | None = None
    nhwc: bool = False
    shuffle: str = "pixel"
    io: str = "float"
    fold: str = "block"

    def __post_init__(self):
        if self.mode not in MODES:
            raise UserError(f"unknown level mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if (self.mode == "fixed") != (self.level is not None):
            raise UserError("--level-mode fixed needs --level L (and --level is only valid with fixed)")
        if self.io not in IO_TYPES:
            raise UserError(f"unknown --io {self.io!r}; choose one of {', '.join(IO_TYPES)}")
        if self.fold not in ("block", "conv"):
            raise UserError(f"unknown fold {self.fold!r}; choose block or conv")
        if self.shuffle not in ("pixel", "deconv"):
            raise UserError(f"unknown shuffle {self.shuffle!r}; choose pixel or deconv")


class DeconvShuffle(nn.Module):
    """PixelShuffle(r) as a stride-r transposed conv with a one-hot kernel (exact; converts at any size)."""

    def __init__(self, out_channels: int, r: int = 2):
        super().__init__()
        self.r = r
        w = torch.zeros(out_channels * r * r, out_channels, r, r)
        for c in range(out_channels):
            for dy in range(r):
                for dx in range(r):
                    w[c * r * r + dy * r + dx, c, dy, dx] = 1.0
        self.register_buffer("weight", w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(x, self.weight, stride=self.r)


class LevelGraph(nn.Module, Ops):
    """`forward(image, level)` (or `forward(image)` in fixed mode) -> restored, per a `GraphSpec`.

    The network's own forward pass (`LevelNet.forward_strength`) with this graph's steps for its level convs,
    residual blocks and shuffles (`train.model.Ops`).
    """

    def __init__(self, net: LevelNet, spec: GraphSpec):
        super().__init__()
        self.net, self.spec = net.eval(), spec
        self.deconvs = nn.ModuleDict({name.replace(".", "_"): DeconvShuffle(c, r)
                                      for name, (c, r) in net.shuffle_channels().items()}
                                     if spec.shuffle == "deconv" else {})
        self.baked = nn.ParameterDict()
        if spec.mode == "fixed":
            s = net.level_map.strength(spec.level)
            for name, conv in self._level_convs():
                sc = net.out_scale(torch.tensor(s)) if conv is net.conv_out else torch.tensor(s)
                w, b = _generated(conv, sc)
                self.baked[name + "_w"] = nn.Parameter(w.detach().clone(), requires_grad=False)
                self.baked[name + "_b"] = nn.Parameter(b.detach().clone(), requires_grad=False)
        self._names = {id(conv): name for name, conv in self._level_convs()}

    def _level_convs(self):
        return [(n.replace(".", "_"), m) for n, m in self.net.named_modules() if isinstance(m, LevelConv2d)]

    def level(self, name: str, conv: LevelConv2d, x: torch.Tensor, s: torch.Tensor | None, relu: bool = False,
              last: bool = False) -> torch.Tensor:
        y = self._conv(conv, x, s)
        return F.relu(y) if relu else y

    def _conv(self, conv: LevelConv2d, x: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
        if conv.form == "plain":
            return F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding)
        mode = self.spec.mode
        if mode == "fixed":
            name = self._names[id(conv)]
            return F.conv2d(x, self.baked[name + "_w"], self.baked[name + "_b"], conv.stride, conv.padding)
        if mode == "weights":
            w, b = _generated(conv, s.reshape(()))
            return F.conv2d(x, w, b, conv.stride, conv.padding)
        if conv.form == "linear" and self.spec.fold == "block":
            return F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding) * _per_channel(s, conv.bias)
        return conv(x, s)

    def block(self, name: str, block, y: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
        c1, c2 = block.conv1, block.conv2
        if self.spec.mode == "folded" and self.spec.fold == "block" and c1.form == c2.form == "linear":
            s4 = s.reshape(-1, 1, 1, 1).to(y.dtype)
            z = F.conv2d(F.relu(F.conv2d(y, c1.weight, c1.bias, c1.stride, c1.padding)), c2.weight, None,
                         c2.stride, c2.padding)
            return y + (z * _per_channel(s4 * s4, c2.bias) + c2.bias.reshape(1, -1, 1, 1) * s4)
        return super().block(name, block, y, s)

    def shuffle(self, name: str, net: LevelNet, x: torch.Tensor) -> torch.Tensor:
        key = name.replace(".", "_")
        return self.deconvs[key](x) if key in self.deconvs else net.shuffles[name](x)

    def forward(self, image: torch.Tensor, level: torch.Tensor | None = None) -> torch.Tensor:
        net = self.net
        x = image.permute(0, 3, 1, 2) if self.spec.nhwc else image
        if self.spec.io == "uint8":
            x = x.to(net.head.weight.dtype) * (1.0 / 255.0)
        s = None if self.spec.mode == "fixed" else net.strength(level)
        if self.spec.mode == "folded":
            s = torch.clamp(s, min=0.0)
        out = net.forward_strength(x, s, ops=self)
        if self.spec.io == "uint8":
            out = torch.clamp(torch.round(out * 255.0), 0.0, 255.0).to(torch.uint8)
        return out.permute(0, 2, 3, 1) if self.spec.nhwc else out


def _per_channel(s: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The strength as a (N, C, 1, 1) factor, one per output channel of the conv whose bias is given.

    Where the level is bound as a constant (`OnnxRunner(bind_level=True)`), onnxruntime folds a
    per-channel Mul (and the bias Add after it) into the conv before it; a (1, 1, 1, 1) factor it leaves
    as a separate pass. The branch is summed before the trunk for the same reason: Conv -> Mul -> Add,
    then the residual Add, which the blocked conv takes in.
    """
    return s.reshape(-1, 1, 1, 1).to(bias.dtype) * torch.ones_like(bias).reshape(1, -1, 1, 1)


def _generated(conv: LevelConv2d, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The conv's weight and bias at strength s: s*W (+ B for the affine form; W and b + s*c for shift)."""
    if conv.form in ("plain", "shift"):
        return conv.weight, conv.bias + s * conv.bias_level if conv.form == "shift" else conv.bias
    w, b = conv.weight * s, conv.bias * s
    if conv.form == "affine":
        w, b = w + conv.weight_b, b + conv.bias_b
    return w, b


def build_graph(net: LevelNet, spec: GraphSpec) -> LevelGraph:
    """Wrap a loaded network for export (eval mode, no gradients)."""
    graph = LevelGraph(net, spec).eval()
    for p in graph.parameters():
        p.requires_grad_(False)
    return graph


def sample_inputs(spec: GraphSpec, n: int = 1, h: int = 64, w: int = 64) -> tuple[torch.Tensor, ...]:
    """Example inputs for tracing: (image,) in fixed mode, else (image, level)."""
    shape = (n, h, w, 3) if spec.nhwc else (n, 3, h, w)
    image = torch.randint(0, 256, shape, dtype=torch.uint8) if spec.io == "uint8" else torch.rand(shape)
    return (image,) if spec.mode == "fixed" else (image, torch.tensor([1.0]))


class Fp16Graph(nn.Module):
    """fp16 weights and compute with float32 I/O (explicit casts at the graph's edges)."""

    def __init__(self, graph: LevelGraph):
        super().__init__()
        self.inner = graph.half()

    def forward(self, image: torch.Tensor, level: torch.Tensor | None = None) -> torch.Tensor:
        image = image if image.dtype == torch.uint8 else image.half()
        out = self.inner(image) if level is None else self.inner(image, level.half())
        return out if out.dtype == torch.uint8 else out.float()
