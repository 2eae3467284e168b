"""What a researcher hit in the first hour (issue 24, sections 4-6): ``itermap.analysis`` after
``import itermap``, progress bars in Jupyter and scripts, Ctrl-C during a sweep, and the
smaller defaults (``lyapunov_scan``'s ``rng``, a driven map's Jacobian at its own state)."""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import itermap
from itermap import systems

ROOT = Path(__file__).resolve().parent.parent


def _python(*parts, timeout=300, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = "\n".join(textwrap.dedent(p) for p in parts)
    return subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=kw.get("cwd", ROOT),
                          check=False)


# -- itermap.analysis after import itermap -----------------------------------------------------
def test_analysis_is_reachable_after_import_itermap_and_loads_lazily():
    done = _python("""
        import sys
        import itermap
        assert "itermap.analysis" not in sys.modules        # nothing loaded eagerly
        assert "analysis" in dir(itermap)
        f = itermap.analysis.lyapunov_spectrum               # loaded on first use
        assert "itermap.analysis" in sys.modules
        from itermap.analysis import lyapunov_spectrum
        assert f is lyapunov_spectrum
        try:
            itermap.no_such_thing
        except AttributeError as exc:
            assert "no_such_thing" in str(exc)
        else:
            raise SystemExit("no AttributeError")
    """)
    assert done.returncode == 0, done.stderr


# -- progress bars -----------------------------------------------------------------------------
FAKE_KERNEL = """
    import sys, types, warnings
    class Shell:                      # what tqdm and itermap ask of a Jupyter kernel
        config = {"IPKernelApp": {}}
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: Shell()
    sys.modules["IPython"] = ipython
    sys.modules["ipykernel.zmqshell"] = types.ModuleType("ipykernel.zmqshell")  # tqdm.auto asks
    sys.modules["ipywidgets"] = None  # not installed: importing it fails
    warnings.simplefilter("error")    # a TqdmWarning fails the run
"""


def test_text_bar_in_a_kernel_without_ipywidgets_warns_nothing_and_redraws_rarely():
    done = _python(FAKE_KERNEL, """
    import time
    import numpy as np
    import itermap
    from itermap._core._progress import NOTEBOOK_INTERVAL
    from itermap.analysis import lyapunov_spectrum
    m = itermap.random_rnn(40, gain=1.5, rng=0)
    t = time.perf_counter()
    lyapunov_spectrum(m, np.full(40, 0.1), 30000, k=3, progress=True, rng=0)
    print(time.perf_counter() - t, NOTEBOOK_INTERVAL)
    """)
    assert done.returncode == 0, done.stderr
    took, interval = map(float, done.stdout.split())
    redraws = done.stderr.count("lyapunov:")  # each redraw writes the bar anew
    assert "lyapunov" in done.stderr and "IProgress" not in done.stderr
    # a redraw (one notebook output) per interval at most, plus the first and the last
    assert 1 <= redraws <= took / interval + 3, (redraws, took)


def test_train_shows_no_bar_in_a_script_and_labels_training_numbers():
    code = """
        import numpy as np, itermap
        rng = np.random.default_rng(0)
        mlp = itermap.IterativeMap.from_mlp([rng.normal(size=(6, 4)), rng.normal(size=(3, 6))])
        x, y = rng.normal(size=(40, 4)), rng.integers(0, 3, 40)
        itermap.train(mlp, x, y, epochs=3, rng=0{})
    """
    quiet = _python(code.format(""))  # stderr is a pipe, as in a script's log
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    shown = _python(code.format(", progress=True"))
    assert shown.returncode == 0, shown.stderr
    assert "train loss=" in shown.stderr and "train acc=" in shown.stderr
    kernel = _python(FAKE_KERNEL, code.format(""))
    assert kernel.returncode == 0, kernel.stderr
    assert "train loss=" in kernel.stderr  # a notebook is interactive: the bar shows


def test_interactive_is_a_kernel_or_a_terminal(monkeypatch):
    from itermap._core import _progress

    class Tty:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    monkeypatch.setattr(sys, "stderr", Tty(True))
    assert _progress.interactive()
    monkeypatch.setattr(sys, "stderr", Tty(False))
    assert not _progress.interactive()
    monkeypatch.setattr(sys, "stderr", None)
    assert not _progress.interactive()


# -- Ctrl-C during a sweep ---------------------------------------------------------------------
SWEEP = """
import sys, time
from itermap.analysis import sweep

def slow(a):
    time.sleep(0.4)
    return a * 2

if __name__ == "__main__":
    sweep(slow, {"a": list(range(60))}, cache=sys.argv[1], executor=2, progress=False)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGINT are POSIX")
def test_ctrl_c_in_a_sweep_says_how_many_points_are_cached(tmp_path):
    script = tmp_path / "sweep_script.py"
    script.write_text(SWEEP)
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, str(script), str(cache)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list(cache.glob("*.npz"))) < 3:
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "Exception in thread" not in err and err.count("Traceback") == 1, err
    lines = [ln for ln in err.splitlines() if ln.startswith("KeyboardInterrupt")]
    assert len(lines) == 1, err
    m = re.fullmatch(r"KeyboardInterrupt: sweep interrupted: (\d+) of 60 points are cached in "
                     r"(.+); run the same sweep again to resume", lines[0])
    assert m, lines[0]
    # the count is what the cache holds, counted here
    assert int(m.group(1)) == len(list(cache.glob("*.npz"))) >= 3
    assert m.group(2) == str(cache)


def test_interrupt_message_without_a_cache():
    from itermap.analysis._sweep import _interrupted

    assert _interrupted(4, None, 10, None).startswith("sweep interrupted: 4 of 10 points "
                                                      "done, none cached (pass cache=DIR")
    assert _interrupted(4, 3, 10, "d").startswith("sweep interrupted: 3 of 10 points are "
                                                  "cached in d;")


# -- lyapunov_scan's rng -----------------------------------------------------------------------
def test_lyapunov_scan_same_seed_same_result():
    from itermap.analysis import lyapunov_scan

    args = (lambda a: systems.henon(a, 0.3), [1.2, 1.4], np.array([0.1, 0.1]), 3000)
    a = lyapunov_scan(*args, k=2, batched=False, rng=5)
    b = lyapunov_scan(*args, k=2, batched=False, rng=5)
    c = lyapunov_scan(*args, k=2, batched=False, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a.exponents, b.exponents)
    np.testing.assert_array_equal(a.exponents, c.exponents)
    np.testing.assert_array_equal(a.stderr, b.stderr)
    # the exponents sum to ln|det J| = ln 0.3 at every step (Henon's Jacobian)
    np.testing.assert_allclose(a.exponents.sum(axis=1), math.log(0.3), atol=1e-10)
    assert a.exponents[1, 0] == pytest.approx(0.419, abs=0.02)  # the classic attractor
    with pytest.raises(TypeError, match="rng"):
        lyapunov_scan(*args, rng="seed")


# -- a driven map's Jacobian at its own state --------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jacobian_of_a_driven_map_defaults_to_the_states_input(seed):
    rng = np.random.default_rng(seed)
    bm = itermap.BlockMatrix.from_pattern([3, 7, 2], [["0", "0", "0"], ["W", "W", "0"],
                                                      ["0", "W", "0"]], rng=rng)
    m = itermap.IterativeMap(bm, rng.normal(size=12), ["identity", "tanh", "tanh"],
                             input_block=0)
    u = rng.normal(size=3)
    x = m.with_input(rng.normal(size=12), u)
    J = m.jacobian(x)
    np.testing.assert_array_equal(J, m.jacobian(x, u))
    # against central differences of the step under the input the state holds
    h = 1e-6
    fd = np.stack([(m.step(x + h * e, u) - m.step(x - h * e, u)) / (2 * h)
                   for e in np.eye(12)], axis=1)
    np.testing.assert_allclose(J, fd, atol=1e-8)
    # a state the map reached holds its input: the Jacobian there is the one under u
    y = m.step(x, u)
    np.testing.assert_array_equal(m.jacobian(y), m.jacobian(y, u))
    X = np.stack([x, y])
    np.testing.assert_array_equal(m.jacobian(X), m.jacobian(X, np.stack([u, u])))
    # and a given u still wins over the state's own
    v = rng.normal(size=3)
    assert not np.allclose(m.jacobian(x, v), J)


def test_fixed_point_bar_in_a_kernel_without_ipywidgets_warns_nothing():
    # the search's bar is itermap's text bar, as lyapunov's is (tqdm.auto warns, and
    # swallows its own warning where warnings are errors: print them instead)
    done = _python(FAKE_KERNEL, """
    warnings.simplefilter("default")
    import itermap
    from itermap.analysis import find_fixed_points, sample_states
    m = itermap.random_rnn(30, gain=1.5, rng=0)
    fp = find_fixed_points(m, sample_states(m, 8, rng=1), progress=True)
    print(fp.n_starts)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["8"]
    assert "fixed points (dim 30, 8 starts)" in done.stderr and "IProgress" not in done.stderr
