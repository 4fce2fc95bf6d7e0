"""The classification sets: five seeded synthetic 2-D sets and the 8x8 handwritten digits."""

from __future__ import annotations

import gzip
import math
from functools import cache
from pathlib import Path

import numpy as np
import torch

from app.datasets.dataset import Dataset

__all__ = ["DATASETS", "DIGITS_FILE", "SYNTHETIC_POINTS", "TEST_FRACTION", "load_dataset", "split_rows"]

DATASETS = ("spiral", "moons", "circles", "xor", "gaussian", "digits")
SYNTHETIC_POINTS = 2000
TEST_FRACTION = 0.2
# app/data/ is package data: the folder beside this package, not a module.
DIGITS_FILE = Path(__file__).parents[1] / "data" / "digits.csv.gz"


def load_dataset(name: str, noise: float, seed: int) -> Dataset:
    """Build dataset `name` (noise applies to the 2-D sets) split 80/20 by `seed`."""
    gen = torch.Generator().manual_seed(seed)
    if name == "digits":
        x, y = _digits()
        classes = 10
    else:
        x, y = _SYNTHETIC[name](SYNTHETIC_POINTS, noise, gen)
        classes = 2
    return split_rows(name, x, y, classes, gen)


def split_rows(name: str, x: torch.Tensor, y: torch.Tensor, classes: int, gen: torch.Generator) -> Dataset:
    """Rows x (rows, features) and labels y (rows,) split 80/20 in an order drawn from `gen`."""
    order = torch.randperm(len(x), generator=gen)
    n_test = int(len(x) * TEST_FRACTION)
    test, train = order[:n_test], order[n_test:]
    return Dataset(name, x[train], y[train], x[test], y[test], classes)


@cache
def _digits_array() -> np.ndarray:
    with gzip.open(DIGITS_FILE, "rt") as f:
        return np.loadtxt(f, delimiter=",", dtype=np.float32)  # (1797, 65)


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    table = torch.from_numpy(_digits_array())
    # Pixels are 0..16; scaled to [0, 1] as in the papers' MNIST set-ups.
    return table[:, :64] / 16.0, table[:, 64].long()


def _labels(n: int) -> torch.Tensor:
    return (torch.arange(n) % 2).long()


def _spiral(n: int, noise: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = _labels(n)
    t = torch.rand(n, generator=gen) * 1.0 + 0.05  # position along the arm, (n,)
    angle = t * 3.5 * math.pi + y * math.pi
    x = torch.stack([t * torch.cos(angle), t * torch.sin(angle)], dim=1)  # (n, 2)
    return x + noise * 0.5 * torch.randn(n, 2, generator=gen), y


def _moons(n: int, noise: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = _labels(n)
    angle = torch.rand(n, generator=gen) * math.pi
    upper = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    lower = torch.stack([1 - torch.cos(angle), 0.5 - torch.sin(angle)], dim=1)
    x = torch.where(y[:, None] == 0, upper, lower) - torch.tensor([0.5, 0.25])
    return x + noise * torch.randn(n, 2, generator=gen), y


def _circles(n: int, noise: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = _labels(n)
    angle = torch.rand(n, generator=gen) * 2 * math.pi
    radius = torch.where(y == 0, 1.0, 0.45)
    x = radius[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return x + noise * 0.5 * torch.randn(n, 2, generator=gen), y


def _xor(n: int, noise: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(n, 2, generator=gen) * 2 - 1
    x = x + torch.sign(x) * 0.05  # a small margin around the axes
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).long()
    return x + noise * 0.5 * torch.randn(n, 2, generator=gen), y


def _gaussian(n: int, noise: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = _labels(n)
    centres = torch.tensor([[-0.6, -0.6], [0.6, 0.6]])[y]
    return centres + (0.2 + noise) * torch.randn(n, 2, generator=gen), y


_SYNTHETIC = {
    "spiral": _spiral,
    "moons": _moons,
    "circles": _circles,
    "xor": _xor,
    "gaussian": _gaussian,
}
