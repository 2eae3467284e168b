"""Weight matrices drawn block by block."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import check_real_array
from ._common import NEGATIVE, POSITIVE, _axes, _finish, _legend_below, _square

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# up to this many units the cells are drawn as one image (a cell is a pixel or more in a
# figure of a few inches): markers, which Agg snaps to whole pixels, leave white seams
# every few cells of a dense block; past it a cell is below a pixel and markers of a
# minimum size keep lone entries of a sparse matrix visible
_IMAGE_UNITS = 512
_DENSE = 0.05  # past this density a larger matrix is an image as well: no lone entries


def _block_matrix_of(W, sizes):
    import scipy.sparse as sp

    from itermap import BlockMatrix

    bm = getattr(W, "block_matrix", W)
    if isinstance(bm, BlockMatrix):
        S = bm.to_sparse()
        if not sp.issparse(S):  # cupyx.scipy.sparse: copy to the host
            S = S.get()
        return S.tocoo(), bm.sizes
    if sp.issparse(W):
        S = W.tocoo()
    else:
        A = check_real_array("W", W, ndim=2) if W is not None else None
        if A is None or A.shape[0] != A.shape[1]:
            raise ValueError(f"W must be a square weight matrix, got "
                             f"{'None' if A is None else A.shape}")
        S = sp.coo_matrix(A)
    n = S.shape[0]
    sizes = (n,) if sizes is None else tuple(int(s) for s in sizes)
    if sum(sizes) != n:
        raise ValueError(f"block sizes {list(sizes)} add up to {sum(sizes)}, not {n}")
    return S, sizes


def block_matrix(W: Any, *, ax: Axes | None = None, sizes: Sequence[int] | None = None,
                 labels: Sequence[str] | None = None, markersize: float | None = None) -> Axes:
    """A spy plot of a block weight matrix with the block boundaries and labels.

    Positive entries are red, negative ones blue; row ``i`` receives from
    column ``j`` (``W[i, j]`` carries unit ``j`` to unit ``i``).

    Parameters
    ----------
    W : IterativeMap, BlockMatrix, 2-D array or sparse matrix
    ax : matplotlib Axes, optional
    sizes : sequence of int, optional
        Block sizes of a plain matrix (a BlockMatrix knows its own).
    labels : sequence of str, optional
        Block names (default ``0``, ``1``, ...).
    markersize : float, optional
        Draw the entries as square markers of this size in points. By default a
        matrix of up to 512 units (or a larger one with more than 5% of its entries
        nonzero) is drawn as an image, one cell an entry, and a larger sparse one as
        markers of 0.9 of a cell (at least 0.3 points), sized each time the figure
        is drawn, after its layout has sized the Axes.

    Returns
    -------
    matplotlib.axes.Axes
        Its first two lines hold the positive and the negative entries (column,
        row), labelled with their counts; where the cells are an image (the
        Axes' only image) those lines are not drawn.

    Raises
    ------
    ValueError
        A matrix that is not square, block sizes that do not add up to its size,
        labels that do not match the blocks.

    Examples
    --------
    >>> import numpy as np
    >>> from itermap import IterativeMap
    >>> from itermap.analysis import plots
    >>> mlp = IterativeMap.from_mlp([np.ones((3, 2)), -np.ones((1, 3))])
    >>> ax = plots.block_matrix(mlp, labels=["x", "h", "y"])
    >>> [line.get_label() for line in ax.get_lines()[:2]]
    ['positive (6)', 'negative (3)']
    """
    S, sizes = _block_matrix_of(W, sizes)
    S.sum_duplicates()
    n = S.shape[0]
    keep = S.data != 0
    rows, cols, vals = S.row[keep], S.col[keep], S.data[keep]
    ax = _axes(ax)
    cells: list[Any] = []
    signs = ((vals > 0, POSITIVE, "positive"), (vals < 0, NEGATIVE, "negative"))
    for mask, color, name in signs:
        cells += ax.plot(cols[mask], rows[mask], ls="none", marker="s",
                         ms=1.0 if markersize is None else markersize, mew=0,
                         color=color, label=f"{name} ({int(mask.sum())})")
    # a dense matrix past 512 units an image too: markers of the sign drawn last covered
    # the other (half positive showed all blue)
    if markersize is None and (n <= _IMAGE_UNITS or len(vals) > _DENSE * n * n):
        _cell_image(ax, n, rows, cols, vals)
        for line in cells:
            line.set_visible(False)
    elif markersize is None:
        from ._cell_size import CellSize

        ax.add_artist(CellSize(cells, n))
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    for o in offsets[1:-1]:
        ax.axhline(o - 0.5, color="0.3", lw=0.6, label="_boundary")
        ax.axvline(o - 0.5, color="0.3", lw=0.6, label="_boundary")
    _square(ax, -0.5, n - 0.5, invert_y=True)
    ax.spines[:].set_visible(True)
    centers = (offsets[:-1] + offsets[1:]) / 2 - 0.5
    labels = [str(i) for i in range(len(sizes))] if labels is None else labels
    if len(labels) != len(sizes):
        raise ValueError(f"got {len(labels)} labels for {len(sizes)} blocks")
    ax.set_xticks(centers, labels)
    ax.set_yticks(centers, labels)
    ax.tick_params(length=0)
    _finish(ax, "from block $j$ (columns: units)", "to block $i$ (rows: units)")
    ax.set_title(f"$W$: {n}$\\times${n}, nnz {len(vals)}, density {len(vals) / n**2:.2g}")
    # the colour key travels with the figure (a PDF on its own has no caption)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    key: list[Any] = [Line2D([], [], ls="none", marker="s", ms=6, mew=0, color=c,
                             label=f"{name} weight ({int(np.sum(m))})") for m, c, name in signs]
    functions = getattr(W, "functions", None) or {}
    for (i, j), g in functions.items():  # a block that is a function has no entries to draw
        ax.add_patch(Rectangle((offsets[j] - 0.5, offsets[i] - 0.5), sizes[j], sizes[i],
                               facecolor="0.85", edgecolor="0.3", hatch="//", lw=0.6,
                               zorder=0.5, label="_function"))
        ax.text(offsets[j] - 0.5 + sizes[j] / 2, offsets[i] - 0.5 + sizes[i] / 2,
                g.name.replace("(", "\n(").replace(" -> ", "\n-> "), ha="center",
                va="center", fontsize="xx-small", clip_on=True,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8})
    if functions:
        key.append(Rectangle((0, 0), 1, 1, facecolor="0.85", edgecolor="0.3", hatch="//",
                             label=f"function block ({len(functions)})"))
    # under the x label, in points: a fixed fraction of a short Axes covers the label; one
    # column where two are wider than the panel (they ran into the next panel's key)
    _legend_below(ax, key, ncol=2, handletextpad=0.2, fit=True)
    return ax


def _cell_image(ax, n, rows, cols, vals):
    """The entries as an RGBA image, one pixel a cell (zero cells transparent)."""
    from matplotlib.colors import to_rgba

    rgba = np.zeros((n, n, 4))
    rgba[rows[vals > 0], cols[vals > 0]] = to_rgba(POSITIVE)
    rgba[rows[vals < 0], cols[vals < 0]] = to_rgba(NEGATIVE)
    ax.imshow(rgba, interpolation="nearest", extent=(-0.5, n - 0.5, n - 0.5, -0.5),
              zorder=2, label="_cells")
