import os
from dataclasses import dataclass

import numpy as np
import pytest

import itermap
from itermap import BlockMatrix, IterativeMap, iterate, load, save


def test_trajectory_round_trip(tmp_path):
    m = itermap.systems.henon()
    traj = iterate(m, np.array([[0.1, 0.0], [0.2, 0.1]]), 20, every=2)
    back = load(save(traj, tmp_path / "traj.npz"))
    np.testing.assert_array_equal(back.states, traj.states)
    np.testing.assert_array_equal(back.times, traj.times)
    assert back.sizes == traj.sizes


def test_map_round_trip_keeps_everything(tmp_path):
    rng = np.random.default_rng(0)
    bm = BlockMatrix.from_pattern([3, 4, 2], [["0", "0", "0"], ["W", "R=0.5", "0"],
                                               ["0", "Row=2", "0"]], rng=rng)
    m = IterativeMap(bm, rng.normal(size=9), ["identity", "tanh", "sigmoid"], input_block=0)
    back = load(save(m, tmp_path / "m"))
    assert back.input_block == 0 and back.sizes == m.sizes
    assert [a.name for a in back.activations] == ["identity", "tanh", "sigmoid"]
    np.testing.assert_array_equal(back.bias, m.bias)
    np.testing.assert_array_equal(back.block_matrix.to_dense(), bm.to_dense())
    assert back.block_matrix.block_pattern().tolist() == bm.block_pattern().tolist()


def test_saveable_dataclass_round_trip(tmp_path):
    from itermap._iterate import Trajectory

    t = Trajectory(np.arange(6.0).reshape(3, 2), np.arange(3), [2])
    assert load(save(t, tmp_path / "t")).states.tolist() == t.states.tolist()


def test_truncated_file_is_a_clear_error(tmp_path):
    path = save(itermap.random_rnn(20, rng=0), tmp_path / "net.npz")
    data = open(path, "rb").read()
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load(path)


def test_foreign_files_are_refused(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="not an itermap file"):
        load(tmp_path / "plain.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a readable itermap file"):
        load(tmp_path / "text.npz")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz")


def test_failed_save_leaves_no_file(tmp_path):
    @dataclass
    class NotRegistered:
        a: int

    with pytest.raises(TypeError, match="cannot save"):
        save(NotRegistered(1), tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


def test_failed_overwrite_keeps_the_old_file(tmp_path, monkeypatch):
    path = save(itermap.systems.henon(0.7, 0.2), tmp_path / "h.npz")

    def broken_savez(fh, **arrays):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save(itermap.systems.henon(), path)
    monkeypatch.undo()
    assert load(path).a == 0.7
    assert sorted(os.listdir(tmp_path)) == ["h.npz"]
