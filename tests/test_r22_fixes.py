"""Round 22: the defects the users left (r22-fixes), each test failing before its fix."""

import numpy as np
import pytest


def _double(n):
    return {"y": n * 2}


def test_the_sweep_cache_tells_np_int64_from_int_and_reuses_plain_ints(tmp_path):
    from itermap.analysis import sweep

    run = lambda n: sweep(_double, [{"n": n}], executor="serial", cache=tmp_path,  # noqa: E731
                          progress=False)
    assert run(np.int64(1)).n_cached == 0
    assert run(1).n_cached == 0            # another computation: not the int64's record
    assert run(1).n_cached == 1            # the same plain value: read back
    assert run([np.float32(0.5)]).n_cached == 0 and run([0.5]).n_cached == 0
