"""Synthetic sequence tasks for the transformer: copy, reverse or sort a string of symbols.

Each row is L = seq_len symbols a in [0, vocab), a separator SEP = vocab, then the answer b
(a itself, a reversed, or a sorted). A causal LM reads x = row[:-1] and predicts y = row[1:];
only the L positions whose target is an answer symbol are scored, the rest are IGNORE.

    reverse, seq_len 3, vocab 5:  row = [3 0 4 | 5 | 4 0 3]   (SEP = 5)
        x = [   3    0    4    5 4 0]
        y = [-100 -100 -100    4 0 3]   (the model cannot know a, so a is not scored)

Everything is generated here from a seed: no downloads, the same rows for the same seed.
"""

from __future__ import annotations

import torch

from app.datasets.dataset import Dataset

__all__ = ["IGNORE", "TASKS", "TEST_ROWS", "TRAIN_ROWS", "load_task"]

TASKS = ("copy", "reverse", "sort")
TRAIN_ROWS = 4096
TEST_ROWS = 512
IGNORE = -100  # F.cross_entropy's default ignore_index: these positions add nothing to the loss


def load_task(task: str, seq_len: int, vocab: int, seed: int) -> Dataset:
    """Train and test rows of `task`; x and y are (rows, 2 * seq_len) int64, classes = vocab + 1."""
    assert task in TASKS, task
    gen = torch.Generator().manual_seed(seed)
    x_train, y_train = _rows(task, TRAIN_ROWS, seq_len, vocab, gen)
    x_test, y_test = _rows(task, TEST_ROWS, seq_len, vocab, gen)
    # With a small vocab and seq_len some test strings also occur in training; the tasks are
    # algorithmic (the answer is a function of the visible input), so that is harmless here.
    return Dataset(task, x_train, y_train, x_test, y_test, classes=vocab + 1)


def _rows(
    task: str, rows: int, seq_len: int, vocab: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.randint(0, vocab, (rows, seq_len), generator=gen)  # (rows, L)
    if task == "copy":
        b = a
    elif task == "reverse":
        b = a.flip(1)
    else:
        b = a.sort(dim=1).values
    sep = torch.full((rows, 1), vocab, dtype=torch.int64)
    row = torch.cat([a, sep, b], dim=1)  # (rows, 2L + 1)
    x = row[:, :-1].clone()  # (rows, 2L)
    y = row[:, 1:].clone()  # (rows, 2L): y[:, t] is the token after x[:, t]
    # Targets a_2..a_L and SEP are random or fixed, not answers: only b_1..b_L are scored.
    y[:, :seq_len] = IGNORE
    return x, y
