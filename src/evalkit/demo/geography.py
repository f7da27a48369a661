"""The demo world's map: which stations share a border (``World.adjacency``, ``adjacency.csv``)."""

from __future__ import annotations

import numpy as np

from evalkit.demo.params import BLOCK_H, BLOCK_W


def station_map(county_sizes: list[int], rng: np.random.Generator) -> np.ndarray:
    """Pairs of station indices ``(i, j)``, ``i < j``, whose areas share a border, on a plausible map.

    Each county is a block of ``BLOCK_W x BLOCK_H`` cells (taller if a county needs it); its
    stations sit on randomly drawn cells of the block (``rng``; the empty cells are hills and
    lakes), so the blocks touch along their edges and which station borders whom is random. Blocks are laid out on a square grid, the first county
    (the first city's core district, home of 巡处一体化) in the centre and the others by distance
    from it, so the patrol adopters border stations of four other counties. Two stations share a
    border when their cells touch along an edge (also across county borders)."""
    n = len(county_sizes)
    side = int(np.ceil(np.sqrt(n)))
    c = (side - 1) / 2
    slots = sorted(((bx - c) ** 2 + (by - c) ** 2, by, bx) for by in range(side) for bx in range(side))[:n]
    h = max(BLOCK_H, -(-max(county_sizes) // BLOCK_W))  # a merged last county may need a taller block
    grid = np.full((side * h, side * BLOCK_W), -1, dtype=np.int64)
    first = 0
    for k, size in enumerate(county_sizes):
        _, by, bx = slots[k]
        order = first + np.arange(size)
        cells = rng.permutation(BLOCK_W * h)[:size]
        grid[by * h + cells // BLOCK_W, bx * BLOCK_W + cells % BLOCK_W] = order
        first += size
    pairs = [np.stack([grid[:, :-1].ravel(), grid[:, 1:].ravel()], axis=1),
             np.stack([grid[:-1, :].ravel(), grid[1:, :].ravel()], axis=1)]
    p = np.concatenate(pairs)
    p = p[(p >= 0).all(axis=1)]
    p = np.sort(p, axis=1)
    p = p[np.lexsort((p[:, 1], p[:, 0]))]
    return p
