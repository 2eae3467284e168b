"""Round 24: a new user's own code and files (maps, torch modules, weights files, specs)."""

from __future__ import annotations

import numpy as np
import pytest

import itermap
from itermap.analysis._report import SpecError, run_report


# -- a report's MLP read from the user's .npz ----------------------------------------------
@pytest.mark.parametrize("members, named", [
    (("W0", "W2"), r"\['W0', 'W2'\]"),                 # torch-style numbering 0, 2
    (("W0", "W1", "b0"), r"\['W0', 'W1', 'b0'\]"),     # one bias of two
    (("W0", "W1", "b0", "b1", "b2"), r"\[.*'b2'\]"),       # a bias with no layer
])
def test_a_report_mlp_file_with_a_gap_or_some_biases_is_refused_not_cut_short(
        tmp_path, members, named):
    # before: W2 after the gap, or every bias, was dropped without a word, and the report
    # analysed another network than the file's
    rng = np.random.default_rng(0)
    shapes = {"W0": (5, 3), "W1": (2, 5), "W2": (2, 5), "b0": (5,), "b1": (2,), "b2": (2,)}
    np.savez(tmp_path / "w.npz", **{k: rng.normal(size=shapes[k]) for k in members})
    spec = {"title": "t", "seed": 0,
            "networks": {"m": {"kind": "mlp", "path": str(tmp_path / "w.npz")}},
            "analyses": [{"kind": "equivalence", "network": "m"}]}
    with pytest.raises(SpecError, match=r"networks\.m\.path: .*w\.npz holds " + named):
        run_report(spec, tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_a_report_mlp_file_with_every_bias_is_the_numpy_mlp(tmp_path):
    rng = np.random.default_rng(1)
    W0, W1, b0, b1 = (rng.normal(size=s) for s in ((5, 3), (2, 5), (5,), (2,)))
    np.savez(tmp_path / "w.npz", W0=W0, W1=W1, b0=b0, b1=b1, notes=np.arange(3))
    from itermap.analysis._report._models import MLP
    from itermap.analysis._report._networks import build_network

    m = build_network("m", MLP(kind="mlp", path=str(tmp_path / "w.npz")), 0)
    x = rng.normal(size=(4, 3))
    np.testing.assert_allclose(m.forward(x), np.maximum(x @ W0.T + b0, 0) @ W1.T + b1,
                               rtol=1e-12, atol=1e-12)
