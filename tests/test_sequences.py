"""The sequence tasks against a plain-Python oracle of their layout, and their seeding promises."""

from __future__ import annotations

import pytest
import torch

from app.datasets.sequences import IGNORE, TASKS, TEST_ROWS, TRAIN_ROWS, load_task


def _answer(task: str, a: list[int]) -> list[int]:
    return {"copy": a, "reverse": a[::-1], "sort": sorted(a)}[task]


@pytest.mark.parametrize("task", TASKS)
def test_rows_are_input_separator_answer_shifted_by_one(task: str) -> None:
    seq_len, vocab = 5, 7
    data = load_task(task, seq_len, vocab, seed=3)
    assert data.classes == vocab + 1
    assert data.x_train.shape == (TRAIN_ROWS, 2 * seq_len) and data.x_test.shape == (TEST_ROWS, 2 * seq_len)
    assert data.y_train.shape == data.x_train.shape and data.y_test.shape == data.x_test.shape
    for t in (data.x_train, data.y_train, data.x_test, data.y_test):
        assert t.dtype == torch.int64
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        for row in range(0, len(x), 97):  # a spread of rows, checked one by one
            a = x[row, :seq_len].tolist()
            b = _answer(task, a)
            assert all(0 <= s < vocab for s in a)
            assert x[row].tolist() == a + [vocab] + b[:-1]
            assert y[row].tolist() == [IGNORE] * seq_len + b


@pytest.mark.parametrize("task", TASKS)
def test_exactly_the_answer_positions_are_scored(task: str) -> None:
    seq_len = 6
    data = load_task(task, seq_len, vocab=4, seed=0)
    scored = data.y_train != IGNORE  # (rows, 2L)
    assert (scored.sum(dim=1) == seq_len).all()
    assert scored[:, seq_len:].all() and not scored[:, :seq_len].any()
    # Each scored target is the answer symbol that follows the token read at that position.
    full = torch.cat([data.x_train, data.y_train[:, -1:]], dim=1)  # (rows, 2L + 1): the whole row
    assert torch.equal(data.y_train[scored], full[:, 1:][scored])


def test_docstring_example_reverse() -> None:
    data = load_task("reverse", seq_len=3, vocab=5, seed=0)
    x, y = data.x_train[0].tolist(), data.y_train[0].tolist()
    a0, a1, a2 = x[:3]
    assert x == [a0, a1, a2, 5, a2, a1]
    assert y == [IGNORE, IGNORE, IGNORE, a2, a1, a0]


def test_sort_answers_are_sorted_and_a_permutation() -> None:
    data = load_task("sort", seq_len=8, vocab=10, seed=2)
    a, b = data.x_train[:, :8], data.y_train[:, 8:]
    assert (b[:, 1:] >= b[:, :-1]).all()
    assert torch.equal(a.sort(dim=1).values, b)


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_rows_other_seed_other_rows(task: str) -> None:
    first, again, other = (load_task(task, 8, 10, seed) for seed in (4, 4, 5))
    assert torch.equal(first.x_train, again.x_train) and torch.equal(first.y_train, again.y_train)
    assert torch.equal(first.x_test, again.x_test) and torch.equal(first.y_test, again.y_test)
    assert not torch.equal(first.x_train, other.x_train)
    assert not torch.equal(first.x_train[:TEST_ROWS], first.x_test)  # test rows are fresh draws


def test_symbols_cover_the_vocabulary() -> None:
    data = load_task("copy", seq_len=8, vocab=10, seed=0)
    counts = torch.bincount(data.x_train[:, :8].flatten(), minlength=10)
    assert (counts > 0.08 * counts.sum()).all()  # uniform draws: each symbol ~10%
