"""A table someone brought: a CSV of numeric features and a label column, parsed, checked and
standardised here. Pure stdlib csv and numpy: no I/O, no web.

    limits = TableLimits(max_bytes=5 * 2**20, max_rows=20_000, max_features=256, max_classes=50)
    table = parse_table(body, limits)           # raises TableError naming the row and column
    data = table.dataset(seed=0)                # a seeded train/test split, like any dataset

Every refusal is a TableError whose message names the row (the file's line number, the header
being row 1), the column (1-based, and its header name when there is one) and the reason. A
table is built whole or not at all: nothing half-parsed is returned.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from app.datasets.classification import split_rows
from app.datasets.dataset import Dataset

__all__ = ["LABEL_NAMES", "Table", "TableError", "TableLimits", "parse_table"]

# Without an explicit label column, a header column of one of these names is the label; else the last.
LABEL_NAMES = ("label", "class", "target")
MAX_NAME_CHARS = 40  # a header name as the table keeps it (and errors quote it)
MAX_LABEL_CHARS = 100  # a class label: the page lists them, the exported script names them
MAX_QUOTED_CHARS = 24  # a cell as an error quotes it
FORMULA_STARTS = ("=", "@")  # what a spreadsheet formula starts with ("+" and "-" start numbers)


@dataclass(frozen=True)
class TableLimits:
    """What one upload may hold (app/config.py's upload_* settings)."""

    max_bytes: int = 5 * 2**20
    max_rows: int = 20_000  # data rows, the header not counted
    max_features: int = 256
    max_classes: int = 50
    min_rows_per_class: int = 5  # so that every class can land in both the train and test split


class TableError(ValueError):
    """A file refused: `code` says why, `row` and `column` (1-based) where, when it is one place."""

    def __init__(
        self,
        code: str,
        message: str,
        row: int | None = None,
        column: int | None = None,
        name: str | None = None,
    ) -> None:
        where = ", ".join(
            part
            for part in (
                f"row {row:,}" if row is not None else "",
                f"column {column:,}" + (f" ({name})" if name else "") if column is not None else "",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)
        self.code, self.row, self.column, self.column_name = code, row, column, name
        self.reason = message

    def to_wire(self) -> dict[str, object]:
        """One entry of an error reply's `errors`: where (row, column) and why (reason)."""
        where = [f"row {self.row}"] if self.row is not None else []
        where += [f"column {self.column}"] if self.column is not None else []
        return {
            "field": ", ".join(where) or "file",
            "reason": self.code,
            "row": self.row,
            "column": self.column,
            "column_name": self.column_name,
            "message": str(self),
        }


@dataclass(frozen=True)
class Table:
    """A standardised table: each feature column has mean 0 and std 1 over all rows (a constant
    column is 0), labels are class indices in the order of `class_names`."""

    x: np.ndarray  # (rows, features) float32, standardised
    y: np.ndarray  # (rows,) int64 class indices
    feature_names: tuple[str, ...]
    label_name: str
    class_names: tuple[str, ...]
    mean: np.ndarray  # (features,) float64: the columns' means before standardising
    std: np.ndarray  # (features,) float64: their population stds (1 where a column is constant)

    @property
    def rows(self) -> int:
        return int(self.x.shape[0])

    @property
    def features(self) -> int:
        return int(self.x.shape[1])

    @property
    def classes(self) -> int:
        return len(self.class_names)

    @property
    def nbytes(self) -> int:
        """Memory the table holds (what a server counts against its uploads' total)."""
        return int(self.x.nbytes + self.y.nbytes + self.mean.nbytes + self.std.nbytes)

    def dataset(self, seed: int) -> Dataset:
        """The seeded 80/20 train/test split, made as the built-in datasets make theirs."""
        x = torch.from_numpy(self.x)  # (rows, features), shares the table's memory (read only)
        y = torch.from_numpy(self.y)  # (rows,)
        return split_rows("upload", x, y, self.classes, torch.Generator().manual_seed(seed))


def parse_table(data: bytes, limits: TableLimits, label: str | None = None) -> Table:
    """The table in `data` (UTF-8 CSV, a BOM allowed): an optional header row, numeric feature
    columns and one label column, `label` by name, else one named label/class/target, else the
    last. Raises TableError, naming the row and column, for anything it cannot take."""
    if len(data) > limits.max_bytes:
        raise TableError("too_large", f"the file has {len(data):,} bytes; at most {limits.max_bytes:,}")
    text = _decode(data)
    if not text.strip():
        raise TableError("empty", "the file is empty: it needs a row per example, features then a label")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows = _rows(reader)
    first = next(rows, None)
    if first is None:
        raise TableError("empty", "the file has no rows")
    line, cells = first
    columns = len(cells)
    if columns > limits.max_features + 1:
        raise TableError(
            "too_many_columns",
            f"{columns:,} columns; at most {limits.max_features + 1} "
            f"({limits.max_features} features and the label)",
            row=line,
        )
    if columns < 2:
        raise TableError(
            "too_few_columns", "one column: a table needs at least one feature and a label", row=line
        )
    header = label is not None or any(not _is_number(cell) for cell in cells[:-1])
    names = tuple(_name(cell, i) for i, cell in enumerate(cells)) if header else _numbered(columns)
    target = _label_column(names, header, label)
    features = [i for i in range(columns) if i != target]
    x, labels, lines = _read(
        ([] if header else [first]), rows, limits, names, features, target, columns, line
    )
    if not labels:
        raise TableError("only_header", "the file has a header and no data rows", row=line)
    class_names, y = _classes(labels, lines, limits, names[target], target)
    mean = x.mean(axis=0)  # (features,) float64
    std = x.std(axis=0)  # (features,) population std, as numpy's default (ddof 0)
    std[std == 0] = 1.0  # a constant column: centred to 0, not divided by 0
    standardised = ((x - mean) / std).astype(np.float32)  # (rows, features)
    return Table(
        x=standardised,
        y=y,
        feature_names=tuple(names[i] for i in features),
        label_name=names[target],
        class_names=class_names,
        mean=mean,
        std=std,
    )


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        row = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        column = data.count(b",", line_start, exc.start) + 1
        raise TableError(
            "not_utf8",
            f"byte 0x{data[exc.start]:02x} (offset {exc.start:,}) is not UTF-8: save the file as UTF-8 CSV",
            row=row,
            column=column,
        ) from None
    return text.removeprefix("\ufeff")  # a byte-order mark, as spreadsheets write UTF-8 CSV


def _rows(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each non-blank row; csv's own errors become TableErrors."""
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise TableError("bad_csv", f"not CSV the parser can read ({exc})", row=reader.line_num) from None
        if any(cell.strip() for cell in cells):
            yield reader.line_num, cells


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _quote(cell: str) -> str:
    return repr(cell if len(cell) <= MAX_QUOTED_CHARS else cell[: MAX_QUOTED_CHARS - 1] + "…")


def _name(cell: str, index: int) -> str:
    name = " ".join(cell.split())  # one line: a quoted header cell may hold line breaks
    return name[:MAX_NAME_CHARS] if name else f"column {index + 1}"


def _numbered(columns: int) -> tuple[str, ...]:
    return tuple(f"x{i + 1}" for i in range(columns - 1)) + ("label",)


def _label_column(names: tuple[str, ...], header: bool, label: str | None) -> int:
    if label is not None:
        wanted = label.strip().casefold()
        for i, name in enumerate(names):
            if name.casefold() == wanted:
                return i
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        raise TableError(
            "no_label_column", f"no column is named {_quote(label)}; the header has {shown}", row=1
        )
    if header:
        for i, name in enumerate(names):
            if name.casefold() in LABEL_NAMES:
                return i
    return len(names) - 1


def _read(
    pending: list[tuple[int, list[str]]],
    rows: Iterator[tuple[int, list[str]]],
    limits: TableLimits,
    names: tuple[str, ...],
    features: list[int],
    target: int,
    columns: int,
    header_line: int,
) -> tuple[np.ndarray, list[str], list[int]]:
    """Every data row's features (float64) and label, and each row's line number."""
    capacity = 1024
    x = np.empty((capacity, len(features)), dtype=np.float64)  # grown by doubling, up to max_rows
    labels: list[str] = []
    lines: list[int] = []
    label_last = target == columns - 1
    for line, cells in itertools.chain(pending, rows):
        if len(cells) != columns:
            raise TableError(
                "ragged",
                f"{len(cells):,} columns, but row {header_line} has {columns}: "
                "every row needs the same columns",
                row=line,
            )
        if len(labels) >= limits.max_rows:
            raise TableError(
                "too_many_rows", f"more than {limits.max_rows:,} data rows (the limit)", row=line
            )
        if len(labels) == capacity:
            capacity = min(2 * capacity, limits.max_rows)
            x = np.resize(x, (capacity, len(features)))
        row = len(labels)
        try:  # numpy's conversion takes what float() takes, ~1.5x faster than a list of float()s
            x[row] = np.array(cells[:-1] if label_last else [cells[i] for i in features], dtype=np.float64)
        except ValueError:
            _explain(cells, features, names, line)  # raises, naming the cell
        if not np.isfinite(x[row]).all():
            i = features[int(np.argmin(np.isfinite(x[row])))]
            raise TableError(
                "non_finite",
                f"{_quote(cells[i].strip())} is not a finite number: NaN and infinity are refused "
                "(fill in or drop the row)",
                row=line,
                column=i + 1,
                name=names[i],
            )
        label = cells[target].strip()
        if len(label) > MAX_LABEL_CHARS:
            raise TableError(
                "label_too_long",
                f"the label {_quote(label)} has {len(label):,} characters; at most {MAX_LABEL_CHARS}",
                row=line,
                column=target + 1,
                name=names[target],
            )
        if not label:
            raise TableError(
                "missing_label",
                "the label is empty: every row needs one",
                row=line,
                column=target + 1,
                name=names[target],
            )
        labels.append(label)
        lines.append(line)
    return x[: len(labels)].copy(), labels, lines


def _explain(cells: list[str], features: list[int], names: tuple[str, ...], line: int) -> None:
    """The first feature cell that is not a number, as a TableError."""
    for i in features:
        cell = cells[i].strip()
        try:
            float(cell)
        except ValueError:
            if not cell:
                reason, code = "the value is missing: every feature needs a number", "missing_value"
            elif cell.startswith(FORMULA_STARTS):
                reason, code = (
                    f"{_quote(cell)} is a spreadsheet formula, not a number: export the values",
                    "non_numeric",
                )
            else:
                reason, code = f"{_quote(cell)} is not a number", "non_numeric"
            raise TableError(code, reason, row=line, column=i + 1, name=names[i]) from None
    raise AssertionError("a row that float() refused has a cell it refuses")


def _classes(
    labels: list[str], lines: list[int], limits: TableLimits, name: str, target: int
) -> tuple[tuple[str, ...], np.ndarray]:
    """The class names, in order (numeric labels by value, others alphabetically), and each row's index."""
    seen: dict[str, int] = {}
    for label, line in zip(labels, lines, strict=True):
        if label not in seen:
            if len(seen) == limits.max_classes:
                raise TableError(
                    "too_many_classes",
                    f"{_quote(label)} would be class {limits.max_classes + 1}; at most "
                    f"{limits.max_classes} classes (is the label column the right one?)",
                    row=line,
                    column=target + 1,
                    name=name,
                )
            seen[label] = 0
        seen[label] += 1
    if len(seen) < 2:
        raise TableError(
            "too_few_classes",
            f"every row has the label {_quote(labels[0])}: a classifier needs two classes at least",
        )
    numeric = all(_is_number(label) for label in seen)
    order = sorted(seen, key=lambda label: (float(label), label) if numeric else (0.0, label))
    thin = [(label, seen[label]) for label in order if seen[label] < limits.min_rows_per_class]
    if thin:
        shown = ", ".join(f"{_quote(label)} has {count}" for label, count in thin[:5])
        more = f" and {len(thin) - 5} more" if len(thin) > 5 else ""
        raise TableError(
            "too_few_rows",
            f"every class needs at least {limits.min_rows_per_class} rows (so that it can be in both "
            f"the train and the test split): {shown}{more}",
            column=target + 1,
            name=name,
        )
    index = {label: i for i, label in enumerate(order)}
    y = np.fromiter((index[label] for label in labels), dtype=np.int64, count=len(labels))  # (rows,)
    return tuple(order), y
