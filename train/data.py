"""Training data: clean crops of a folder of photos, degraded at every training level.

Each step's batch is a pure function of (seed, rank, step): the same crops, augmentations and noise
whatever the number of loader workers, so a resumed run sees exactly the batches it would have seen.

Usage:
    ds = LevelBatches(load_images("train/CBSD432"), task="denoise", levels=(15, 35, 55, 75), seed=0)
    clean, degraded, levels = ds[step]       # (B,3,P,P), (k*B,3,P,P), (k*B,)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtimes.core.degrade import add_noise, bicubic_sr, jpeg
from runtimes.core.errors import UserError
from runtimes.core.images import list_images, read_uint8


def load_images(folder: str | Path, min_size: int = 0, exclude: tuple[str, ...] = ()) -> list[np.ndarray]:
    """Read every image of a folder as uint8 RGB; skip (with a warning) those smaller than `min_size`."""
    images, skipped = [], []
    paths = list_images(folder)
    unknown = sorted(set(exclude) - {p.name for p in paths})
    if unknown:  # a warning, not an error: the scripts leave out 302003.jpg from any training folder
        print(f"warning: --exclude {', '.join(unknown)}: no such image in {folder}", file=sys.stderr)
    for path in paths:
        if path.name in exclude:
            continue
        img = read_uint8(path)
        if min(img.shape[:2]) < min_size:
            skipped.append(path.name)
            continue
        images.append(img)
    if not images:
        raise UserError(f"no usable image (>= {min_size} px) in {folder}" +
                        (f" ({len(skipped)} smaller skipped); lower --patch" if skipped else ""))
    if skipped:
        print(f"warning: skipped {len(skipped)} image(s) smaller than {min_size} px: {', '.join(skipped[:5])}",
              file=sys.stderr)
    return images


def degrade_crop(crop: np.ndarray, task: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """Degrade one uint8 crop at `level` (noise drawn from `rng`)."""
    if task == "denoise":
        return add_noise(crop, level, rng)
    if task == "dejpeg":
        return jpeg(crop, level)
    return bicubic_sr(crop, level)


def augment(crop: np.ndarray, code: int) -> np.ndarray:
    """One of the 8 dihedral transforms (flips and 90-degree rotations)."""
    out = np.rot90(crop, k=code % 4)
    return np.ascontiguousarray(out[:, ::-1] if code >= 4 else out)


@dataclass
class LevelBatches:
    """Indexable by step: the same clean crops at every training level."""

    images: list[np.ndarray]
    task: str
    levels: tuple[float, ...]
    batch: int = 16
    patch: int = 96
    seed: int = 0
    rank: int = 0
    jitter: float = 0.0  # 0: the exact training levels (the seed's method); j > 0: see `sample_levels`
    exact: float = 0.0  # with jitter or strata: the fraction of each level's samples kept at the exact level
    strata: bool = False  # each level's samples uniform over (previous level, level]; the first from the neutral
    neutral: float = 0.0  # the level meaning "no degradation" (the bottom of the first stratum)

    def sample_levels(self, rng: np.random.Generator) -> np.ndarray:
        """Per-sample levels (k*B,): each training level, or with `jitter` j a uniform draw from the
        interval reaching j of the way to each neighbouring level (the ends stay at the end levels).
        With `exact` p, the first round(p*B) samples of each level keep the exact level (the end levels
        are otherwise drawn from one side only, which leaves the network unpinned at the ends)."""
        if self.strata:
            return self.sample_strata(rng)
        base = np.repeat(np.asarray(self.levels, np.float64), self.batch)
        if self.jitter <= 0 or len(self.levels) < 2:
            return base.astype(np.float32)
        lv = np.sort(np.asarray(self.levels, np.float64))
        gaps = np.diff(lv)
        lo = lv - self.jitter * np.concatenate([[0.0], gaps])
        hi = lv + self.jitter * np.concatenate([gaps, [0.0]])
        order = np.searchsorted(lv, np.asarray(self.levels, np.float64))
        lo_s, hi_s = np.repeat(lo[order], self.batch), np.repeat(hi[order], self.batch)
        out = rng.uniform(lo_s, hi_s)
        keep = self._pinned(out.size)
        out[keep] = base[keep]
        return out.astype(np.float32)

    def sample_strata(self, rng: np.random.Generator) -> np.ndarray:
        """Per-sample levels (k*B,) covering the whole range: the samples of the level i-th closest to the
        neutral level are drawn uniformly between the (i-1)-th (the neutral level for the first) and it, so
        sigma 15 35 55 75 trains sigma 0-75 continuously, a quarter of the samples in each stratum (JPEG
        quality 10 30 50 80: quality 100-80, 80-50, ...). With `exact` p, the first round(p*B) samples of each
        level keep the level itself (a stratum's top is drawn no more often than its inside otherwise)."""
        levels = np.asarray(self.levels, np.float64)
        dist = np.abs(levels - self.neutral)
        ordered = np.sort(dist)
        bottoms = np.concatenate([[0.0], ordered[:-1]])[np.searchsorted(ordered, dist)]
        d = rng.uniform(np.repeat(bottoms, self.batch), np.repeat(dist, self.batch))
        keep = self._pinned(d.size)
        d[keep] = np.repeat(dist, self.batch)[keep]
        sign = np.repeat(np.sign(levels - self.neutral), self.batch)
        return (self.neutral + sign * d).astype(np.float32)

    def _pinned(self, n: int) -> np.ndarray:
        """Mask of the samples (of n, level-major) that keep their exact level: the first round(exact*B) of each."""
        return (np.arange(n) % self.batch) < round(self.exact * self.batch)

    def crops(self, rng: np.random.Generator) -> np.ndarray:
        out = np.empty((self.batch, self.patch, self.patch, 3), np.uint8)
        for i in range(self.batch):
            img = self.images[rng.integers(len(self.images))]
            y = rng.integers(img.shape[0] - self.patch + 1)
            x = rng.integers(img.shape[1] - self.patch + 1)
            out[i] = augment(img[y : y + self.patch, x : x + self.patch], int(rng.integers(8)))
        return out

    def __getitem__(self, step: int):
        """(clean (B,3,P,P), degraded (k*B,3,P,P) or an empty array for denoising, levels (k*B,)).

        Noise is added on the training device (`add_noise_torch`), which keeps the loader light.
        """
        rng = np.random.default_rng([self.seed, self.rank, int(step)])
        clean = self.crops(rng)
        levels = self.sample_levels(rng)
        clean_f = clean.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        if self.task == "denoise":
            return clean_f, np.empty((0,), np.float32), levels
        deg = np.stack([degrade_crop(c, self.task, float(lv), rng) for lv, c in zip(levels, np.tile(clean, (
            len(self.levels), 1, 1, 1)), strict=True)])
        return clean_f, deg.transpose(0, 3, 1, 2).copy(), levels


def add_noise_torch(clean_rep, sigmas, seed: int, rank: int, step: int):
    """Gaussian noise of std sigma/255 per sample, drawn from a generator seeded by (seed, rank, step)."""
    import torch

    gen = torch.Generator(device=clean_rep.device)
    gen.manual_seed((seed * 1_000_003 + rank * 7_919 + step) % 2**63)
    noise = torch.randn(clean_rep.shape, generator=gen, device=clean_rep.device, dtype=clean_rep.dtype)
    return clean_rep + noise * (sigmas.reshape(-1, 1, 1, 1) / 255.0)
