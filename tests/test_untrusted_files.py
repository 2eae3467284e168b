"""Untrusted files through every entry that reads one (issue 23, items 2, 3, 8 and 10).

Archives with members nobody needs (some of them declaring huge sizes), special files
(``/dev/zero``, a FIFO, a folder) and foreign library errors, for ``load``,
``from_torch`` (``.npz`` and ``.safetensors``), a report spec file and a spec's network
paths, and the command line.
"""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import itermap
from itermap._interop import _io
from itermap.analysis._report import SpecError, load_spec, run_report

ROOT = Path(__file__).resolve().parents[1]


def _npy(a=None, *, header=None, data=b""):
    """The bytes of an .npy member: of ``a``, or a raw ``header`` dict then ``data``."""
    buf = io.BytesIO()
    if a is not None:
        np.save(buf, a)
    else:
        np.lib.format.write_array_header_1_0(buf, header)
        buf.write(data)
    return buf.getvalue()


def _zip(path, members, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _bomb_member(nbytes=20_000_000):
    """A deflated .npy of ``nbytes`` zeros: about 20 kB on disk, 20 MB in memory."""
    return _npy(np.zeros(nbytes // 8))


def _mlp_members(rng):
    W0, W1 = rng.normal(size=(5, 3)), rng.normal(size=(2, 5))
    return {"W0.npy": _npy(W0), "W1.npy": _npy(W1)}, W0, W1


class _OpenSpy:
    """Records the archive members that are opened (decompressed) through zipfile."""

    def __init__(self, monkeypatch):
        self.opened: list[str] = []
        real = zipfile.ZipFile.open

        def spy(zf, name, *args, **kwargs):
            self.opened.append(name if isinstance(name, str) else name.filename)
            return real(zf, name, *args, **kwargs)

        monkeypatch.setattr(zipfile.ZipFile, "open", spy)


def _spec(tmp_path, net_toml, analysis="block_matrix", name="spec.toml"):
    text = f"[networks.n]\n{net_toml}\n[[analyses]]\nkind = \"{analysis}\"\nnetwork = \"n\"\n"
    path = tmp_path / name
    path.write_text(text)
    return path


# -- item 2: zip bombs through the side doors ----------------------------------------------------
def test_zip_bomb_from_torch_npz_reads_only_the_members_it_needs(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    W0, b0 = rng.normal(size=(4, 3)), rng.normal(size=4)
    path = _zip(tmp_path / "w.npz", {"net.0.weight.npy": _npy(W0), "net.0.bias.npy": _npy(b0),
                                     "optimizer.npy": _bomb_member()})
    spy = _OpenSpy(monkeypatch)
    m = itermap.from_torch(path, ["Linear"], prefix="net.")
    assert all("optimizer" not in name for name in spy.opened), spy.opened
    x = rng.normal(size=3)
    y = m.readout(itermap.iterate(m, m.zeros(), m.settle_steps, inputs=x, keep="last").final)
    np.testing.assert_allclose(y, W0 @ x + b0, rtol=1e-13, atol=1e-13)


def test_zip_bomb_from_torch_npz_unexpected_member_is_refused_unread(tmp_path, monkeypatch):
    # without a prefix every member is a key; one the architecture does not use is refused
    # by its name, without being decompressed
    rng = np.random.default_rng(3)
    path = _zip(tmp_path / "w.npz", {"0.weight.npy": _npy(rng.normal(size=(4, 3))),
                                     "optimizer.npy": _bomb_member()})
    spy = _OpenSpy(monkeypatch)
    with pytest.raises(ValueError, match=r"unexpected weights \['optimizer'\]"):
        itermap.from_torch(path, ["Linear"])
    assert spy.opened == ["0.weight.npy"], spy.opened


def test_zip_bomb_report_mlp_path_reads_only_the_weights(tmp_path, monkeypatch):
    members, W0, W1 = _mlp_members(np.random.default_rng(1))
    _zip(tmp_path / "w.npz", {**members, "junk.npy": _bomb_member()})
    spy = _OpenSpy(monkeypatch)
    doc = run_report(_spec(tmp_path, 'kind = "mlp"\npath = "w.npz"', "equivalence"),
                     tmp_path / "r", progress=False)
    assert doc["networks"]["n"]["sizes"] == [3, 5, 2]
    assert doc["analyses"][0]["numbers"]["max_abs_error"] <= 1e-12
    assert set(spy.opened) <= {"W0.npy", "W1.npy"}, spy.opened
    # a layer after a gap (W5 without W2) is refused by its name, still unread
    _zip(tmp_path / "w.npz", {**members, "W5.npy": _bomb_member()})
    spy.opened.clear()
    with pytest.raises(SpecError, match=r"holds \['W0', 'W1', 'W5'\]"):
        run_report(_spec(tmp_path, 'kind = "mlp"\npath = "w.npz"', "equivalence"),
                   tmp_path / "r2", progress=False)
    assert "W5.npy" not in spy.opened, spy.opened


@pytest.mark.parametrize("entry", ["load", "from_torch", "mlp_path"])
def test_zip_bomb_needed_member_over_the_memory_cap_is_refused_before_reading(
        tmp_path, monkeypatch, entry):
    # a member that is needed is checked against the cap by its declared size, before
    # anything is decompressed
    W0 = np.ones((400, 300))  # 960 kB declared
    if entry == "load":
        path = itermap.save(itermap.systems.linear(W0[:300]), tmp_path / "w.npz")
    else:
        path = _zip(tmp_path / "w.npz", {"0.weight.npy" if entry == "from_torch" else "W0.npy":
                                         _npy(W0)})
    monkeypatch.setattr(_io, "_memory_cap", lambda: 500_000)
    spy = _OpenSpy(monkeypatch)
    with pytest.raises(ValueError, match=f"{path}.*declares .* bytes uncompressed"):
        if entry == "load":
            itermap.load(path)
        elif entry == "from_torch":
            itermap.from_torch(path, ["Linear"])
        else:
            from itermap.analysis._report._networks import _mlp

            class Net:
                path = str(tmp_path / "w.npz")
                activation, output_activation = "relu", "identity"

            _mlp(Net, None, "networks.n")
    assert all(not n.startswith(("0.weight", "W0", "A")) for n in spy.opened), spy.opened


# -- item 8: a header that declares 2**34 entries; foreign errors ---------------------------------
def _huge_header_member():
    return _npy(header={"descr": "<f8", "fortran_order": False, "shape": (2 ** 34,)},
                data=b"\0" * 64)


def test_npz_header_declaring_2_34_entries_is_a_value_error_not_memory_error(tmp_path):
    path = _zip(tmp_path / "w.npz", {"0.weight.npy": _huge_header_member()})
    with pytest.raises(ValueError, match=f"{path}.*header describes"):
        itermap.from_torch(path, ["Linear"])
    rng = np.random.default_rng(2)
    members, _, _ = _mlp_members(rng)
    _zip(tmp_path / "m.npz", {**members, "b0.npy": _huge_header_member(),
                              "b1.npy": _npy(np.zeros(2))})
    with pytest.raises(SpecError, match="header describes"):
        run_report(_spec(tmp_path, 'kind = "mlp"\npath = "m.npz"'), tmp_path / "r",
                   progress=False)


def _zip64_declaring(tmp_path, entries=2 ** 34):
    """A valid archive whose zip64 end record declares ``entries`` members."""
    import struct

    path = _zip(tmp_path / "z64.npz", {"0.weight.npy": _npy(np.zeros((2, 2)))},
                zipfile.ZIP_STORED)
    data = path.read_bytes()
    eocd = data.rfind(b"PK\x05\x06")
    cd_size, cd_off = struct.unpack("<II", data[eocd + 12:eocd + 20])
    z64 = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries,
                      2 ** 40, cd_off)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, eocd, 1)
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                                        0xFFFFFFFF, 0)
    path.write_bytes(data[:eocd] + z64 + locator + end)
    return path


def test_npz_directory_declaring_2_34_entries_is_a_value_error(tmp_path):
    path = _zip64_declaring(tmp_path)
    for read in (itermap.load, lambda p: itermap.from_torch(p, ["Linear"])):
        with pytest.raises(ValueError, match=f"{path} is not a readable"):
            read(path)
    _spec_path = _spec(tmp_path, f'kind = "mlp"\npath = "{path}"')
    with pytest.raises(SpecError, match=f"{path} is not a readable"):
        run_report(_spec_path, tmp_path / "r", progress=False)


def test_foreign_errors_safetensors_error_names_the_file(tmp_path):
    pytest.importorskip("safetensors")
    path = tmp_path / "w.safetensors"
    header = json.dumps({"0.weight": {"dtype": "F64", "shape": [4, 3],
                                      "data_offsets": [0, 96]}}).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 8)  # data too short
    with pytest.raises(ValueError, match=f"{path}.*SafetensorError"):
        itermap.from_torch(path, ["Linear"])
    path.write_bytes(b"\xff" * 7)  # shorter than the length prefix
    with pytest.raises(ValueError, match=str(path)):
        itermap.from_torch(path, ["Linear"])


def test_foreign_errors_panic_exception_a_base_exception_is_wrapped(tmp_path, monkeypatch):
    st = pytest.importorskip("safetensors.numpy")

    class PanicException(BaseException):  # pyo3's: not an Exception
        pass

    def panics(path):
        raise PanicException("called `Result::unwrap()` on an `Err` value")

    monkeypatch.setattr(st, "load_file", panics)
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\0" * 16)
    with pytest.raises(ValueError, match=f"{path}.*PanicException"):
        itermap.from_torch(path, ["Linear"])


# -- item 3: special files, for every entry that reads a file -------------------------------------
_PROBE = textwrap.dedent("""
    import json, os, resource, signal, sys, io, contextlib
    # a read of /dev/zero must fail fast rather than take the machine's memory
    resource.setrlimit(resource.RLIMIT_AS, (6 * 2 ** 30, 6 * 2 ** 30))

    def alarm(*_):
        raise TimeoutError("blocked")

    signal.signal(signal.SIGALRM, alarm)
    import itermap
    from itermap.analysis._report import load_spec, run_report
    from itermap.analysis.cli import main

    work, cases = sys.argv[1], json.loads(sys.argv[2])

    def spec_with(net):
        p = os.path.join(work, "spec-%d.toml" % len(os.listdir(work)))
        with open(p, "w") as fh:
            fh.write("[networks.n]\\n" + net + "\\n[[analyses]]\\nkind = \\"block_matrix\\""
                     "\\nnetwork = \\"n\\"\\n")
        return p

    def run(entry, path):
        if entry == "load":
            itermap.load(path)
        elif entry == "from_torch":
            itermap.from_torch(path, ["Linear"])
        elif entry == "spec_file":
            load_spec(path)
        elif entry == "mlp_path":
            run_report(spec_with('kind = "mlp"\\npath = "%s"' % path), work + "/o", progress=False)
        elif entry == "saved_path":
            run_report(spec_with('kind = "saved"\\npath = "%s"' % path), work + "/o",
                       progress=False)
        elif entry == "cli":
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                rc = main(["report", path, "--out", work + "/o"])
            text = err.getvalue().strip()
            assert rc == 2 and "\\n" not in text and path in text, (rc, text)
            raise ValueError(text)

    for entry, path in cases:
        signal.alarm(5)
        try:
            run(entry, path)
            out = ["returned", ""]
        except BaseException as exc:
            out = [type(exc).__name__, str(exc)[:500]]
        finally:
            signal.alarm(0)
        print(json.dumps([entry, path] + out), flush=True)
""")

_ENTRIES = {"load": ".npz", "from_torch": ".npz", "safetensors": ".safetensors",
            "spec_file": ".toml", "mlp_path": ".npz", "saved_path": ".npz", "cli": ".toml"}
_KINDS = ("dev_zero", "fifo", "folder")


@pytest.fixture(scope="module")
def special_file_outcomes(tmp_path_factory):
    work = tmp_path_factory.mktemp("special")
    cases = []
    for entry, suffix in _ENTRIES.items():
        for kind in _KINDS:
            path = work / f"{kind}-{entry}{suffix}"
            if kind == "dev_zero":
                os.symlink("/dev/zero", path)
            elif kind == "fifo":
                os.mkfifo(path)
            else:
                path.mkdir()
            cases.append(["from_torch" if entry == "safetensors" else entry, str(path)])
    runs = work / "runs"
    runs.mkdir()
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(runs), json.dumps(cases)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg",
                               # one BLAS thread: its buffers stay far below the probe's
                               # address-space limit on a machine of many cores
                               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                               "MKL_NUM_THREADS": "1"})
    outcomes = {}
    for line in proc.stdout.splitlines():
        entry, path, exc, message = json.loads(line)
        outcomes[path] = (exc, message)
    return work, outcomes, proc.stderr[-2000:]


@pytest.mark.parametrize("kind", _KINDS)
@pytest.mark.parametrize("entry", list(_ENTRIES))
def test_special_files_are_refused_naming_the_path(special_file_outcomes, entry, kind):
    work, outcomes, stderr = special_file_outcomes
    path = str(work / f"{kind}-{entry}{_ENTRIES[entry]}")
    assert path in outcomes, f"the probe died before this case: {stderr}"
    exc, message = outcomes[path]
    assert exc in ("ValueError", "SpecError"), (exc, message)
    assert path in message and "not a regular file" in message, message


def test_special_files_check_regular_file_names_the_kind(tmp_path):
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "FIFO"), ("/dev/zero", "character device"),
                       (tmp_path, "folder")):
        with pytest.raises(ValueError, match=f"model: {path} is a {kind}"):
            _io.check_regular_file(path, "model")
    with pytest.raises(FileNotFoundError):
        _io.check_regular_file(tmp_path / "none", "model")
    with pytest.raises(TypeError, match="model must be a str"):
        _io.check_regular_file(3, "model")


def test_special_files_a_fifo_swapped_in_after_the_check_does_not_block(tmp_path, monkeypatch):
    fifo = tmp_path / "f.npz"
    os.mkfifo(fifo)
    monkeypatch.setattr(_io, "check_regular_file", lambda path, what="path": os.fspath(path))
    with pytest.raises(ValueError, match=f"{fifo} is a FIFO"):
        _io.open_regular_file(fifo, "path")


def test_spec_file_too_big_or_not_utf8_is_refused(tmp_path):
    big = tmp_path / "big.toml"
    with open(big, "wb") as fh:
        fh.truncate(17 * 2 ** 20)
    with pytest.raises(SpecError, match="larger than"):
        load_spec(big)
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"title = '\xff'\n")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_spec(bad)



# -- item 10: leftovers of killed reports, full disks, read-only folders ------------------------
_SMALL = 'kind = "random_rnn"\nn = 5\ngain = 0.5'


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_killed_report_leftover_building_folders_are_removed_by_the_next_run(tmp_path):
    host, dead = _io._host(), _dead_pid()
    out = tmp_path / "r"
    out.mkdir()  # an (empty) earlier report: the swap had finished, so an old copy is garbage
    stale = [tmp_path / f".r.building-{host}-{dead}-x1y2", tmp_path / f".r.old-{host}-{dead}-q"]
    live = [tmp_path / f".r.building-{host}-1-abcd",      # pid 1 is alive: not ours to remove
            tmp_path / f".r.building-otherhost-{dead}-z",  # another host's: cannot tell
            tmp_path / f".other.building-{host}-{dead}-z"]  # another report's name
    for d in stale + live:
        (d / "figures").mkdir(parents=True)
        (d / "figures" / "fig1.png").write_bytes(b"png")
    run_report(_spec(tmp_path, _SMALL), out, progress=False)
    assert not any(d.exists() for d in stale), [d.name for d in stale if d.exists()]
    assert all(d.exists() for d in live)
    assert (out / "report.html").exists()
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".r."))
    assert left == sorted(d.name for d in live if d.name.startswith(".r."))


def test_killed_report_old_copy_is_kept_while_it_is_the_only_copy(tmp_path):
    host, dead = _io._host(), _dead_pid()
    old = tmp_path / f".r.old-{host}-{dead}-q"  # killed between the two renames: no r
    old.mkdir()
    (old / "results.json").write_text("{}")
    run_report(_spec(tmp_path, _SMALL), tmp_path / "r", progress=False)
    assert (old / "results.json").exists()


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _erofs(*args, **kwargs):
    raise OSError(errno.EROFS, "Read-only file system")


@pytest.mark.parametrize("where", ["results", "figures", "folder"])
def test_full_disk_or_read_only_folder_report_exits_1_with_one_line(tmp_path, monkeypatch,
                                                                     capsys, where):
    from itermap.analysis.cli import main

    spec = _spec(tmp_path, _SMALL)
    out = tmp_path / "site" / "r"
    if where == "results":  # the disk fills while the report is written
        monkeypatch.setattr(Path, "write_text", _enospc)
    elif where == "figures":
        import matplotlib.figure

        monkeypatch.setattr(matplotlib.figure.Figure, "savefig", _enospc)
    else:  # a read-only folder (chmod does not stop root, so the refusal is simulated)
        import tempfile

        monkeypatch.setattr(tempfile, "mkdtemp", _erofs)
    assert main(["report", str(spec), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    line = errors[0]
    assert line.startswith("itermap report: error: cannot write the report") and \
        str(out.parent) in line, line
    assert ("No space left" if where != "folder" else "Read-only") in line
    assert not out.exists()
    assert not [p.name for p in out.parent.iterdir()] if out.parent.exists() else True


def test_full_disk_train_save_state_warns_and_keeps_training(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    m = itermap.IterativeMap.from_mlp([rng.normal(size=(6, 2)), rng.normal(size=(2, 6))],
                                      activation="tanh")
    x = rng.normal(size=(40, 2))
    y = (x[:, 0] > 0).astype(int)
    straight, h1 = itermap.train(m, x, y, epochs=3, lr=0.05, rng=3, progress=False)
    monkeypatch.setattr(_io, "write_npz_atomic", _enospc)
    with pytest.warns(RuntimeWarning, match=r"save_state: could not write .*state\.npz after "
                                            r"epoch \d .*No space left.*training goes on"):
        full, h2 = itermap.train(m, x, y, epochs=3, lr=0.05, rng=3, progress=False,
                                 save_state=tmp_path / "state.npz")
    np.testing.assert_array_equal(full.block_matrix.to_dense(), straight.block_matrix.to_dense())
    np.testing.assert_array_equal(h1.loss, h2.loss)
    assert not (tmp_path / "state.npz").exists()
    with pytest.raises(ValueError, match="save_state: the folder .* does not exist"):
        itermap.train(m, x, y, epochs=1, progress=False, save_state=tmp_path / "no" / "s.npz")


@pytest.fixture
def no_blocking():
    """Fail (rather than hang) a test whose open of a FIFO would wait for a writer."""
    import signal

    class Blocked(Exception):  # not an OSError, which the code under test may catch
        pass

    def alarm(*_):
        raise Blocked("blocked on a special file")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(5)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_special_files_sweep_table_and_cache_files_do_not_block(tmp_path, no_blocking):
    from itermap.analysis import SweepResult, sweep

    fifo = tmp_path / "table.npz"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "FIFO"), (tmp_path, "folder")):
        with pytest.raises(ValueError, match=f"{path} is a {kind}"):
            SweepResult.load(path)
    cache = tmp_path / "cache"
    cache.mkdir()
    os.mkfifo(cache / "sweep.json")  # a manifest that is a FIFO: replaced, not waited on
    res = sweep(lambda x: x + 1, {"x": [1.0]}, executor="serial", cache=cache, progress=False)
    assert res["result"].tolist() == [2.0] and (cache / "sweep.json").is_file()


def test_special_files_report_out_folder_with_a_fifo_is_refused_not_waited_on(tmp_path,
                                                                              no_blocking):
    out = tmp_path / "r"
    out.mkdir()
    os.mkfifo(out / "results.json")
    with pytest.raises(FileExistsError, match="is not an itermap report"):
        run_report(_spec(tmp_path, _SMALL), out, progress=False)


def test_killed_report_sigkill_leftover_is_removed_by_the_next_run(tmp_path):
    import signal
    import time

    spec = _spec(tmp_path, _SMALL)
    # a report that is killed while its analyses run (they sleep here, so the kill lands)
    code = textwrap.dedent(f"""
        import time
        from itermap.analysis._report import _run
        _run._run_one = lambda *a, **k: time.sleep(120)
        _run.run_report({str(spec)!r}, {str(tmp_path / "r")!r}, progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".r.building-*")) and time.monotonic() < deadline:
            time.sleep(0.1)
            assert proc.poll() is None, "the report ended before it was killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    left = list(tmp_path.glob(".r.building-*"))
    assert len(left) == 1 and f"-{proc.pid}-" in left[0].name
    run_report(spec, tmp_path / "r", progress=False)
    assert not left[0].exists() and (tmp_path / "r" / "report.html").exists()
    assert not list(tmp_path.glob(".r.*"))


# -- properties: any damage to a weights archive is a ValueError naming it, or harmless ----------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_W0 = np.arange(12.0).reshape(4, 3) / 7
_CLEAN = io.BytesIO()
with zipfile.ZipFile(_CLEAN, "w", zipfile.ZIP_DEFLATED) as _zf:
    _zf.writestr("net.0.weight.npy", _npy(_W0))
    _zf.writestr("opt.state.npy", _npy(np.zeros(50)))
_CLEAN_BYTES = _CLEAN.getvalue()


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_damaged_weights_archive_is_refused_naming_it_or_read_exactly(tmp_path, data):
    raw = bytearray(_CLEAN_BYTES)
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(len(raw) // 2, len(raw)))
    path = tmp_path / "w.npz"
    path.write_bytes(bytes(raw[:cut]))
    try:
        m = itermap.from_torch(path, ["Linear"], prefix="net.")
    except ValueError as exc:
        assert str(path) in str(exc), exc
        return
    # read: then it holds exactly the weights written (a damaged byte went unread, or the
    # CRC would have caught it)
    np.testing.assert_array_equal(m.block_matrix.to_dense()[3:, :3], _W0)
