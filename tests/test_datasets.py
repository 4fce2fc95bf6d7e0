"""Datasets: shapes, classes, the split, and seeding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import app
from app.datasets import DATASETS, load_dataset
from app.datasets.classification import DIGITS_FILE


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_shapes_and_split(name: str) -> None:
    data = load_dataset(name, noise=0.1, seed=0)
    n_train, n_test = len(data.x_train), len(data.x_test)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert data.x_train.shape[1] == data.features == (64 if name == "digits" else 2)
    assert set(data.y_train.tolist()) == set(range(data.classes))
    assert n_test == pytest.approx(0.2 * (n_train + n_test), abs=1)
    assert torch.isfinite(data.x_train).all()


def test_digits_is_the_real_set() -> None:
    data = load_dataset("digits", noise=0.0, seed=0)
    assert len(data.x_train) + len(data.x_test) == 1797
    assert data.classes == 10
    assert 0.0 <= data.x_train.min().item() and data.x_train.max().item() == 1.0


@pytest.mark.parametrize("name", ["spiral", "digits"])
def test_same_seed_same_data_different_seed_different_split(name: str) -> None:
    a, b, c = (load_dataset(name, 0.2, s) for s in (3, 3, 4))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)


def test_noise_moves_the_synthetic_points() -> None:
    quiet, noisy = load_dataset("moons", 0.0, 1), load_dataset("moons", 0.5, 1)
    assert (quiet.x_train - noisy.x_train).abs().mean().item() > 0.1


def test_the_digits_are_read_from_the_packaged_data_folder() -> None:
    assert DIGITS_FILE == Path(app.__file__).parent / "data" / "digits.csv.gz"
    assert DIGITS_FILE.is_file()
