"""Decoder windows that cover the pixels whose output matters, with little area to decode.

A decoder whose outputs depend on nothing farther than its receptive radius gives a pixel the
value of decoding everything as long as the window around it reaches ``context >= radius``
pixels beyond it, or the edge of the decoded extent. Whole tiles are one such cover; around a
thin unknown band most of a tile is known pixels and context. `plan_cover` covers the needed
cells (``cell`` pixels square) instead by horizontal bands of at most ``max_cells`` cell rows,
each cut into runs of needed columns: gaps narrower than the two contexts a cut would add are
bridged and long runs are split, so that no window's own part exceeds ``max_cells`` cells and
no crop ``max_side`` pixels (a tile and the longest tile crop, for the memory bound). The band
boundaries are chosen by dynamic programming over the cell rows, minimising
the decoded area (the decoder's cost per pixel does not depend on the window's size).
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["DecodeWindow", "plan_cover"]


@dataclass(frozen=True)
class DecodeWindow:
    """The decoder reads ``crop`` (y0, y1, x0, x1 in pixels); its output is kept in ``own``."""

    crop: tuple[int, int, int, int]
    own: tuple[int, int, int, int]


def _cell_too_large(max_side: int) -> ValueError:
    return ValueError(f"plan_cover: one cell with its context exceeds the window limit of "
                      f"{max_side} pixels")


@dataclass(frozen=True)
class _Axis:
    """One axis of the cell grid: where a window over cells [start, end) reads pixels, and how
    long its own part (``max_cells``) and its crop (``max_side`` pixels) may be."""

    cell: int
    context: int
    extent: int
    max_cells: int
    max_side: int

    def crop(self, start, end):
        """Pixel bounds of cells [start, end) plus the context, clipped to [0, extent]."""
        return (np.maximum(start * self.cell - self.context, 0),
                np.minimum(end * self.cell + self.context, self.extent))

    def fits(self, start, end):
        """Whether a window over cells [start, end) respects both limits."""
        lo, hi = self.crop(start, end)
        return (end - start <= self.max_cells) & (hi - lo <= self.max_side)

    def pieces_estimate(self, length: np.ndarray) -> np.ndarray:
        """Windows needed for runs of ``length`` cells away from the edges (for costs)."""
        inner = min(self.max_cells, (self.max_side - 2 * self.context) // self.cell)
        return -(-length // max(1, inner))

    def split(self, start: int, end: int) -> list[tuple[int, int]]:
        """Cells [start, end) cut greedily into the fewest windows that fit."""
        pieces = []
        while start < end:
            stop = start + 1
            while stop < end and self.fits(start, stop + 1):
                stop += 1
            if not self.fits(start, stop):
                raise _cell_too_large(self.max_side)
            pieces.append((start, stop))
            start = stop
        return pieces


def _bridge_gaps(masks: np.ndarray, max_gap: int) -> np.ndarray:
    """Per row: also mark runs of at most ``max_gap`` unmarked cells between two marked ones."""
    size = masks.shape[-1]
    cols = np.arange(size)
    left = np.maximum.accumulate(np.where(masks, cols, -1), axis=-1)
    right = np.minimum.accumulate(np.where(masks, cols, size)[..., ::-1], axis=-1)[..., ::-1]
    return masks | ((left >= 0) & (right < size) & (right - left - 1 <= max_gap))


def _runs(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row index, start and end (exclusive) of every run of marked cells, row by row."""
    edges = np.diff(np.pad(masks.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)
    return rows, starts, ends


class _BandPlanner:
    """Bands of cell rows over a grid of needed cells, each cut into windows of its needed
    columns; ``plan`` picks the band boundaries that decode the least area."""

    def __init__(self, needed: np.ndarray, rows: _Axis, cols: _Axis):
        self.needed = needed
        self.rows, self.cols = rows, cols
        self.max_gap = 2 * cols.context // cols.cell
        self.prefix = np.concatenate([np.zeros((1, needed.shape[1]), np.int64),
                                      np.cumsum(needed, axis=0)])

    def band_columns(self, start: np.ndarray, end: int) -> np.ndarray:
        """Needed columns (gaps bridged) of the bands of cell rows [start[k], end)."""
        return _bridge_gaps(self.prefix[end] - self.prefix[start] > 0, self.max_gap)

    def widths(self, columns: np.ndarray) -> np.ndarray:
        """Decoded width (pixels) of each band's windows, estimated for the costs."""
        rows, starts, ends = _runs(columns)
        lo, hi = self.cols.crop(starts, ends)
        extra = 2 * self.cols.context * (self.cols.pieces_estimate(ends - starts) - 1)
        return np.bincount(rows, weights=hi - lo + extra, minlength=len(columns))

    def plan(self) -> tuple[float, list[tuple[int, int]]]:
        """Least decoded area and the bands (cell rows [start, end)) achieving it."""
        num_rows = len(self.needed)
        best = np.zeros(num_rows + 1)
        chosen = np.zeros(num_rows + 1, np.int64)
        for end in range(1, num_rows + 1):
            starts = np.arange(end - 1, -1, -1)[: self.rows.max_cells]  # ties: shortest
            lo, hi = self.rows.crop(starts, end)
            costs = best[starts] + (hi - lo) * self.widths(self.band_columns(starts, end))
            costs[~self.rows.fits(starts, end)] = np.inf
            k = int(np.argmin(costs))
            if not np.isfinite(costs[k]):
                raise _cell_too_large(self.rows.max_side)
            best[end], chosen[end] = costs[k], starts[k]
        bands, end = [], num_rows
        while end > 0:
            bands.append((int(chosen[end]), end))
            end = bands[-1][0]
        return float(best[-1]), bands[::-1]

    def windows(self, bands: list[tuple[int, int]], transpose: bool) -> list[DecodeWindow]:
        cell = self.rows.cell
        out = []
        for start, end in bands:
            y0, y1 = (int(v) for v in self.rows.crop(start, end))
            _, run_starts, run_ends = _runs(self.band_columns(np.array([start]), end))
            for run_start, run_end in zip(run_starts.tolist(), run_ends.tolist()):
                for s, e in self.cols.split(run_start, run_end):
                    x0, x1 = (int(v) for v in self.cols.crop(s, e))
                    crop, own = (y0, y1, x0, x1), (start * cell, end * cell, s * cell, e * cell)
                    if transpose:
                        crop, own = crop[2:] + crop[:2], own[2:] + own[:2]
                    out.append(DecodeWindow(crop, own))
        return out


def plan_cover(
    needed: np.ndarray,
    cell: int,
    max_cells: int,
    context: int,
    extent: tuple[int, int],
    max_side: tuple[int, int] | None = None,
) -> list[DecodeWindow]:
    """Windows covering every True cell of ``needed`` [rows, cols] (cells of ``cell`` pixels).

    Each window's own area is whole cells, at most ``max_cells`` per side; its crop adds
    ``context`` pixels on every side, clipped to [0, extent] (the pixels the decoder may read),
    and is at most ``max_side`` pixels (rows, cols; default: ``max_cells`` cells plus two
    contexts) per side. Bands run along the rows or the columns, whichever decodes less area.
    Own areas do not overlap; cells outside them are not needed.
    """
    if needed.ndim != 2 or needed.dtype != np.bool_:
        raise ValueError(f"plan_cover: needed must be a 2-d bool array, got {needed.dtype} "
                         f"{needed.shape}")
    if max_cells < 1 or context < 0 or context % cell:
        raise ValueError(f"plan_cover: need max_cells >= 1 and context a multiple of {cell}, "
                         f"got max_cells={max_cells}, context={context}")
    if max_side is None:
        max_side = (max_cells * cell + 2 * context,) * 2
    axes = [_Axis(cell, context, extent[i], max_cells, max_side[i]) for i in range(2)]
    best = None
    for transpose in (False, True):
        grid = np.ascontiguousarray(needed.T) if transpose else needed
        planner = _BandPlanner(grid, *(axes[::-1] if transpose else axes))
        area, bands = planner.plan()
        if best is None or area < best[0]:
            best = (area, planner, bands, transpose)
    _, planner, bands, transpose = best
    return planner.windows(bands, transpose)
