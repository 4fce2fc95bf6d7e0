"""The data every run trains on, generated or read here from a seed: no downloads.

data = load_dataset("spiral", noise=0.1, seed=0)  # the 2-D sets and the digits
rows = load_task("reverse", seq_len=8, vocab=10, seed=0)  # the transformer's sequence tasks
"""

from __future__ import annotations

from app.datasets.classification import DATASETS, load_dataset
from app.datasets.dataset import Dataset
from app.datasets.sequences import TASKS, load_task

__all__ = ["DATASETS", "TASKS", "Dataset", "load_dataset", "load_task"]
