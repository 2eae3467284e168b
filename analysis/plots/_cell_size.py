"""Unit markers sized to a matrix's cells once the layout has sized the Axes."""

from __future__ import annotations

import numpy as np
from matplotlib.artist import Artist


class CellSize(Artist):
    """Drawn first among its Axes' artists (after the layout and the aspect have sized the
    Axes): sets the marker size of ``lines`` to 0.9 of one of ``n`` cells, in points (at
    least 0.3, at most 8)."""

    def __init__(self, lines, n: int):
        super().__init__()
        self.lines, self.n = lines, n
        self.set_zorder(-np.inf)

    def draw(self, renderer) -> None:
        ax = self.axes
        if ax is None:
            return
        box = ax.get_window_extent(renderer)
        width_pt = min(box.width, box.height) / renderer.points_to_pixels(1.0)
        size = float(np.clip(0.9 * width_pt / max(self.n, 1), 0.3, 8.0))
        for line in self.lines:
            line.set_markersize(size)
