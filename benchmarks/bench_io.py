"""save and load with their checks, against plain NumPy doing the same work (issue 12 §5).

Targets: load's checks (metadata first, zip and npy headers against it, sparse
validation) cost at most 1.3x a plain ``np.load`` of every entry followed by
the same construction (``IterativeMap`` from the arrays); save at most 1.3x a
plain durable write (``np.savez`` to a temporary, ``fsync``, ``os.replace``).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import scipy.sparse as sp

import itermap
from benchmarks._timing import compare


def _load_all(path):
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _plain_map(path):
    a = _load_all(path)
    if "block_0_0.data" in a:
        n = a["block_0_0.indptr"].shape[0] - 1
        W = sp.csr_matrix((a["block_0_0.data"], a["block_0_0.indices"], a["block_0_0.indptr"]),
                          shape=(n, n))
    else:
        W = a["block_0_0"]
    return itermap.IterativeMap(W)


def _plain_durable_save(path, arrays):
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def run(quick: bool = False) -> list[dict]:
    n = 1000 if quick else 3000
    repeat = 3 if quick else 7
    folder = tempfile.mkdtemp(prefix="bench-io-")
    rows = []
    cases = {
        f"dense N={n}": (itermap.random_rnn(n, rng=0), _plain_map),
        f"sparse N={10 * n} d=1e-3": (itermap.random_rnn(10 * n, density=1e-3, rng=0),
                                      _plain_map),
        f"trajectory {n} x 10^3": (itermap.iterate(itermap.random_rnn(n, gain=0.9, rng=1),
                                                   np.full(n, 0.1), 999), _load_all),
    }
    for label, (obj, plain_load) in cases.items():
        path = os.path.join(folder, "obj.npz")
        plain = os.path.join(folder, "plain.npz")
        itermap.save(obj, path)
        arrays = _load_all(path)
        size = os.path.getsize(path) / 2 ** 20
        rows.append(compare(f"load {label} ({size:.0f} MiB) vs np.load + same construction",
                            lambda p=path: itermap.load(p),
                            lambda p=path, f=plain_load: f(p),
                            target="ratio <= 1.3", repeat=repeat))
        rows.append(compare(f"save {label} ({size:.0f} MiB) vs np.savez + fsync + replace",
                            lambda o=obj, p=path: itermap.save(o, p),
                            lambda p=plain, a=arrays: _plain_durable_save(p, a),
                            target="ratio <= 1.3", repeat=repeat))
    return rows
