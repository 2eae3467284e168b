"""Memory and time estimates of a spec, checked before anything is built or run."""

from __future__ import annotations

import contextlib
import os

from ._models import SpecError

__all__ = ["BudgetError", "memory_limit", "DEFAULT_TIME_LIMIT", "network_bytes",
           "check_budget", "human_bytes", "human_seconds"]

#: seconds a report may be estimated to take before it is refused (``--force`` overrides)
DEFAULT_TIME_LIMIT = 3600.0


class BudgetError(SpecError):
    """A spec whose estimated memory or run time is over the limit (the message names the key)."""


def memory_limit() -> float:
    """Bytes a report may use: 80% of the memory available now (MemAvailable on Linux)."""
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return 0.8 * int(line.split()[1]) * 1024
    try:
        return 0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4.0 * 2 ** 30


def human_bytes(b: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if b < 1024 or unit == "PiB":
            return f"{b:.3g} {unit}"
        b /= 1024
    raise AssertionError


def human_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.2g} s"
    if s < 7200:
        return f"{s / 60:.3g} min"
    if s < 3 * 86400:
        return f"{s / 3600:.3g} h"
    return f"{s / 86400 / 365.25:.3g} years" if s > 86400 * 365 else f"{s / 86400:.3g} days"


def network_bytes(net, sizes) -> tuple[float, str]:
    """Estimated bytes to build and hold a network, and the key that sets them."""
    if net.kind == "random_rnn":
        # a dense draw holds W and a copy; a sparse one its coordinates (16 B) and CSR (12 B)
        return (2 * 8.0 * sizes.nnz if net.density > 0.1 else 40.0 * sizes.nnz), "n"
    key = "sizes" if net.kind != "mlp" else "path" if net.widths is None else "widths"
    return 3 * 8.0 * sizes.nnz + 8.0 * sizes.dim ** 2, key


def check_budget(spec, sizes, *, time_limit=DEFAULT_TIME_LIMIT, force=False, mem_limit=None):
    """Refuse a spec whose estimates exceed the limits; return the per-analysis estimates.

    Parameters
    ----------
    spec : Spec
    sizes : dict
        ``{network name: Sizes}`` (networks known only once loaded are left out, and
        their analyses are checked again after loading).
    time_limit : float
        Seconds; the sum of the analyses' estimates may not exceed it unless ``force``.
    force : bool
        Run even when the time estimate is over the limit (never the memory check).

    Returns
    -------
    list of Cost or None
        One per analysis (None for those whose networks are not sized yet).

    Raises
    ------
    BudgetError
        Naming the key, the estimate and the limit.

    Examples
    --------
    >>> from itermap.analysis._report import validate_spec
    >>> from itermap.analysis._report._networks import static_sizes
    >>> spec = validate_spec({"networks": {"r": {"kind": "random_rnn", "n": 10 ** 6}},
    ...                       "analyses": [{"kind": "block_matrix", "network": "r"}]})
    >>> check_budget(spec, {"r": static_sizes("r", spec.networks["r"], "networks.r")})
    Traceback (most recent call last):
    ...
    itermap.analysis._report._budget.BudgetError: networks.r.n: the network needs about 14.6 TiB ...
    """
    limit = memory_limit() if mem_limit is None else mem_limit
    held = 0.0  # the report builds every network and holds them all
    for name, net in spec.networks.items():
        if name in sizes:
            need, key = network_bytes(net, sizes[name])
            held += need
            if held > limit:
                raise BudgetError(f"networks.{name}.{key}: the network needs about "
                                  f"{human_bytes(need)} of memory (estimate"
                                  + (f"; {human_bytes(held)} with the networks before it"
                                     if held > need else "") + "), over the limit "
                                  f"of {human_bytes(limit)} (80% of the memory available)")
    costs, total = [], 0.0
    for i, cfg in enumerate(spec.analyses):
        if any(n not in sizes for n in cfg.network_names()):
            costs.append(None)
            continue
        cost = cfg.cost(sizes)
        costs.append(cost)
        if cost.bytes > limit:
            raise BudgetError(f"analyses[{i}].{cost.memory_key}: {cfg.kind} needs about "
                              f"{human_bytes(cost.bytes)} of memory (estimate), over the "
                              f"limit of {human_bytes(limit)} (80% of the memory available)")
        total += cost.seconds
        if not force and total > time_limit:
            raise BudgetError(f"analyses[{i}].{cost.time_key}: {cfg.kind} would take about "
                              f"{human_seconds(cost.seconds)} (estimate; the report up to it "
                              f"{human_seconds(total)}), over the time limit of "
                              f"{human_seconds(time_limit)}; lower it, or pass --force to run "
                              "anyway")
    return costs
