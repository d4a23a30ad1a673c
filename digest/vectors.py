"""The one module that imports numpy: the array library of summarising and story grouping, and the
dense similarity they both need. Others import `np` from here (lazily where numpy should load only in
the workers), so the library is pinned and swapped in one place."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["np", "Sparse", "centred_likeness"]

Sparse = tuple[np.ndarray, np.ndarray]  # a vector as its column ids and their values


def centred_likeness(rows: Sequence[Sparse], centring: float) -> np.ndarray:
    """(n, n) likeness of some sparse vectors: their dot products blended with the cosines of the
    vectors minus their mean, `centring` of the weight to the latter. The mean is what all of them
    share, so the centred part tells apart groups that the plain dot products see as one."""
    columns, inverse = np.unique(np.concatenate([ids for ids, _ in rows]), return_inverse=True)
    dense = np.zeros((len(rows), len(columns)))
    row_of = np.repeat(np.arange(len(rows)), [len(ids) for ids, _ in rows])
    dense[row_of, inverse] = np.concatenate([values for _, values in rows])
    plain = dense @ dense.T
    centred = dense - dense.mean(axis=0)
    norms = np.linalg.norm(centred, axis=1)
    norms[norms == 0] = 1.0
    centred /= norms[:, None]
    likeness: np.ndarray = (plain + centring * (centred @ centred.T)) / (1 + centring)
    return likeness
