"""Pure batch planning: which prepared rows go together into one forward pass."""

from __future__ import annotations

import numpy as np


def plan_batches(row_count: int, max_rows: int, lengths: np.ndarray | None = None,
                 max_tokens: int | None = None) -> list[np.ndarray]:
    """Row index arrays, one per forward pass, covering every row exactly once.

    Without lengths: consecutive slices of at most `max_rows`. With lengths (text): rows sorted by
    length and packed so that rows * longest row stays under `max_tokens`, which cuts padding; the
    caller scatters outputs back by index, so input order is restored before writing. A row longer
    than the token budget gets a batch of its own.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    if row_count == 0:
        return []
    if lengths is None or max_tokens is None:
        return [np.arange(start, min(start + max_rows, row_count)) for start in range(0, row_count, max_rows)]
    order = np.argsort(lengths, kind="stable")
    batches: list[np.ndarray] = []
    current: list[int] = []
    longest = 0
    for index in order:
        length = int(lengths[index])
        grown_longest = max(longest, length)
        if current and ((len(current) + 1) * grown_longest > max_tokens or len(current) >= max_rows):
            batches.append(np.array(current))
            current, grown_longest = [], length
        current.append(int(index))
        longest = grown_longest
    if current:
        batches.append(np.array(current))
    return batches


def split_in_halves(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    middle = len(indices) // 2
    return indices[:middle], indices[middle:]
