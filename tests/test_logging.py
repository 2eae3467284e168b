"""The ``itermap`` logger (issue 30 §4): long runs record what they decide, and a library
that nobody configured logging for prints nothing."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import itermap
from itermap import analysis
from itermap._running import _reorth
from itermap.systems import logistic

ROOT = Path(__file__).resolve().parent.parent


def _records(caplog, needle):
    return [r for r in caplog.records
            if r.name.startswith("itermap") and needle in r.getMessage()]


def test_the_logger_is_silent_until_configured():
    log = logging.getLogger("itermap")
    assert any(isinstance(h, logging.NullHandler) for h in log.handlers)
    assert log.level == logging.NOTSET and log.propagate  # the application decides


# one decision of each kind, in a fresh process: a sweep read back from its cache, a
# fixed-point method chosen, Newton's sequential fallback (which also warns: the warning
# is for the user, and goes to stderr whatever logging does)
_SCRIPT = textwrap.dedent("""
    import logging, sys, warnings
    import numpy as np
    import itermap
    from itermap import analysis
    from itermap.systems import henon, logistic
    if sys.argv[1] == "configured":
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    for _ in range(2):
        analysis.sweep(lambda a: {"y": a * 2.0}, {"a": [1.0, 2.0]}, executor="serial",
                       cache=sys.argv[2], progress=False)
    analysis.find_fixed_points(henon(), np.zeros((4, 2)) + 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        itermap.iterate(logistic(4.0), np.array([0.2]), 300, method="newton", max_iter=10,
                        fallback="sequential")
""")


def _run(mode, cache):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-c", _SCRIPT, mode, str(cache)], env=env,
                          capture_output=True, text=True, timeout=300, check=True)


def test_nothing_prints_by_default_and_the_decisions_are_there_when_asked(tmp_path):
    quiet = _run("default", tmp_path / "a")
    assert quiet.stdout == "" and quiet.stderr == ""
    loud = _run("configured", tmp_path / "b").stderr
    assert loud.count("read from the cache") == 2  # the second sweep's two points
    assert "itermap.analysis.fixed_points._driver: find_fixed_points: method 'newton'" in loud
    assert "sequential path" in loud


def test_a_sweep_logs_each_cache_hit(tmp_path, caplog):
    grid = {"a": [1.0, 2.0, 3.0]}
    with caplog.at_level(logging.DEBUG, logger="itermap"):
        analysis.sweep(lambda a: {"y": a}, grid, executor="serial", cache=tmp_path,
                       progress=False)
        assert not _records(caplog, "read from the cache")  # nothing cached yet
        analysis.sweep(lambda a: {"y": a}, grid, executor="serial", cache=tmp_path,
                       progress=False)
    assert len(_records(caplog, "read from the cache")) == 3


def test_newtons_fallback_is_logged_beside_its_warning(caplog):
    with caplog.at_level(logging.INFO, logger="itermap"), pytest.warns(RuntimeWarning):
        traj = itermap.iterate(logistic(4.0), np.array([0.2]), 300, method="newton",
                               max_iter=10, fallback="sequential")
    (rec,) = _records(caplog, "sequential path")
    assert rec.levelno == logging.INFO and traj.fallback_reason in rec.getMessage()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="itermap"):  # converges: nothing to log
        itermap.iterate(logistic(2.5), np.array([0.2]), 50, method="newton")
    assert not _records(caplog, "sequential path")


def test_the_fixed_point_method_chosen_is_logged(caplog):
    m = itermap.random_rnn(8, gain=0.5, rng=0)
    with caplog.at_level(logging.INFO, logger="itermap"):
        analysis.find_fixed_points(m, np.zeros((2, 8)))
        analysis.find_fixed_points(m, np.zeros((2, 8)), slow_points=True)
    said = [r.getMessage() for r in _records(caplog, "find_fixed_points: method")]
    assert said == ["find_fixed_points: method 'newton' at dim 8",
                    "find_fixed_points: method 'q' at dim 8"]


def test_a_spaced_qr_warning_is_logged(caplog):
    W = np.random.default_rng(1).normal(scale=2.0 / 8.0, size=(64, 64))  # gain 2
    m = itermap.IterativeMap(W, activation="tanh")
    x0 = np.random.default_rng(0).normal(size=(1, 64))
    with caplog.at_level(logging.INFO, logger="itermap"), pytest.warns(RuntimeWarning):
        res = analysis.lyapunov_spectrum(m, x0, 400, transient=50, reorthonormalize_every=5,
                                         rng=0)
    (rec,) = _records(caplog, "spaced QRs")
    assert f"{res.qr_error:.1e}" in rec.getMessage() and "every=5" in rec.getMessage()


def test_a_householder_fallback_is_logged(caplog):
    # a frame with condition number e^40 (past shifted CholeskyQR3's reach, ~1e13): Householder
    n, k = 180, 130
    rng = np.random.default_rng(4)
    U = np.linalg.qr(rng.normal(size=(1, n, k)))[0]
    V = np.linalg.qr(rng.normal(size=(k, k)))[0]
    with caplog.at_level(logging.DEBUG, logger="itermap"):
        with _reorth.Reorthonormalizer() as reorth:
            reorth((U * np.exp(-0.31 * np.arange(k))) @ V)
            reorth(U[..., :k] @ V)  # well conditioned, and within the hold: no new record
    assert reorth.fallbacks == 1
    assert len(_records(caplog, "Householder")) == 1


def test_a_sweep_that_turns_its_cache_off_says_so(tmp_path, monkeypatch, caplog):
    # a function reading a global that cannot be hashed: the cache cannot tell a stale
    # result, so the sweep runs without it (a warning for the user, a record for the log)
    (tmp_path / "log_lock_mod.py").write_text(
        "import threading\nLOCK = threading.Lock()\n"
        "def point(x):\n    with LOCK:\n        return x + 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.delitem(sys.modules, "log_lock_mod", raising=False)
    import log_lock_mod

    with caplog.at_level(logging.INFO, logger="itermap"), pytest.warns(RuntimeWarning):
        res = analysis.sweep(log_lock_mod.point, {"x": [1.0]}, executor="serial",
                             cache=tmp_path / "cache", progress=False)
    assert res["result"].tolist() == [2.0]
    (rec,) = _records(caplog, "cache off")
    assert "LOCK" in rec.getMessage()
    sys.modules.pop("log_lock_mod", None)
