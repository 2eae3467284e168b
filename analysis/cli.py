"""The ``itermap`` command line: ``itermap demo`` (the default) and ``itermap report``."""

from __future__ import annotations

import argparse
import difflib
import math
import sys

import numpy as np

import itermap


def demo(seed: int = 0, out=None) -> bool:
    """Build an MLP and an RNN as iterative maps and check the equivalence.

    Returns True when both checks pass.

    Examples
    --------
    >>> import io
    >>> demo(out=io.StringIO())
    True
    """
    out = sys.stdout if out is None else out
    rng = np.random.default_rng(seed)
    widths = [8, 16, 16, 4]
    Ws = [rng.normal(size=(o, i)) / np.sqrt(i) for i, o in zip(widths[:-1], widths[1:])]
    bs = [0.1 * rng.normal(size=o) for o in widths[1:]]
    mlp = itermap.IterativeMap.from_mlp(Ws, bs, activation="relu")
    x = rng.normal(size=(32, widths[0]))
    h = x
    for layer, (W, b) in enumerate(zip(Ws, bs)):
        h = h @ W.T + b
        if layer < len(Ws) - 1:
            h = np.maximum(h, 0.0)
    state = mlp.zeros(32)
    for _ in range(len(Ws)):
        state = mlp.step(state, x)
    err_mlp = float(np.max(np.abs(mlp.readout(state) - h)))
    rests = bool(np.array_equal(mlp.step(state, x), state))

    print(f"MLP {widths} as an iterative map: {mlp}", file=out)
    print(mlp.block_matrix.describe(), file=out)
    print(f"  {len(Ws)} steps from the zero state, input held: "
          f"max |map - forward pass| = {err_mlp:.2e}; one more step changes nothing: {rests}",
          file=out)

    n_x, n_h, T = 3, 12, 50
    W_hh = rng.normal(size=(n_h, n_h)) / np.sqrt(n_h)
    W_hx = rng.normal(size=(n_h, n_x))
    b = 0.1 * rng.normal(size=n_h)
    seq = rng.normal(size=(T, n_x))
    rnn = itermap.IterativeMap.from_rnn(W_hh, W_hx, b)
    hid = np.zeros(n_h)
    ref = []
    for t in range(T):
        hid = np.tanh(W_hh @ hid + W_hx @ seq[t] + b)
        ref.append(hid)
    traj = itermap.iterate(rnn, rnn.zeros(), T, inputs=seq)
    err_rnn = float(np.max(np.abs(traj.block(1)[1:] - np.array(ref))))
    print(f"\nElman RNN (input {n_x}, hidden {n_h}) as a driven map: {rnn}", file=out)
    print(rnn.block_matrix.describe(), file=out)
    print(f"  {T} driven steps: max |map - plain RNN loop| = {err_rnn:.2e}", file=out)
    ok = err_mlp <= 1e-12 and rests and err_rnn <= 1e-12
    print(f"\nequivalence checks: {'PASSED' if ok else 'FAILED'}", file=out)
    return ok


def _seconds(text: str) -> float:
    """A positive, finite number of seconds (argparse names the option on refusal)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        # nan would turn the limit off silently: every comparison with it is False
        raise argparse.ArgumentTypeError(f"expected a positive, finite number of seconds, got "
                                         f"{text!r}")
    return value


def _integer(text: str, least: int, expected: str) -> int:
    """An integer of at least ``least`` (argparse names the option on refusal)."""
    try:
        value = int(text)
    except ValueError:
        value = least - 1  # refused below, with the same message
    if value < least:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def _seed(text: str) -> int:
    """A non-negative integer seed (NumPy refuses negative ones with a traceback)."""
    return _integer(text, 0, "a non-negative integer")


def _threads(text: str) -> str | int:
    """``auto``, ``default`` or a positive count of BLAS threads."""
    if text in ("auto", "default"):
        return text
    return _integer(text, 1, "a positive integer, 'auto' or 'default'")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="itermap", description="Neural networks as iterative maps (arXiv:2404.00880).")
    sub = parser.add_subparsers(dest="command")
    p_demo = sub.add_parser("demo", help="build an MLP and an RNN as maps and check them "
                                         "(the default)")
    p_demo.add_argument("--seed", type=_seed, default=0)
    p_report = sub.add_parser(
        "report", help="run the analyses of a TOML spec and write an HTML report, figures "
                       "and results.json",
        description="Exit status: 0 written; 1 written, but an analysis failed (its section "
                    "says why); 2 the spec was refused before anything ran.")
    p_report.add_argument("spec", nargs="?",
                          help="the spec (.toml), or the name of a shipped example (--list)")
    p_report.add_argument("--out", default="report", help="the report folder (default: report)")
    p_report.add_argument("--example", action="store_true",
                          help="run the embedded default (the example 'example')")
    p_report.add_argument("--list", action="store_true", help="name the shipped examples")
    p_report.add_argument("--schema", action="store_true",
                          help="print the JSON Schema of a spec (data/spec.schema.json)")
    p_report.add_argument("--seed", type=_seed, default=None, help="override the spec's seed")
    p_report.add_argument("--time-limit", type=_seconds, default=3600.0, metavar="SECONDS",
                          help="refuse a spec estimated to run longer (default 3600)")
    p_report.add_argument("--blas-threads", type=_threads, default="auto", metavar="N",
                          help="BLAS threads while the analyses run: a number, 'default' (the "
                               "library's) or 'auto' (one for networks of <= 512 units, "
                               "the default)")
    p_report.add_argument("--force", action="store_true",
                          help="run even when the time estimate is over the limit (the "
                               "memory estimate is always enforced)")
    args, extra = parser.parse_known_args(argv)
    if extra:  # argparse names them under the top usage: the sub-command's, and a close option
        own = {"demo": p_demo, "report": p_report}.get(args.command, parser)
        options = [o for action in own._actions for o in action.option_strings]
        said = []
        for word in extra:
            near = difflib.get_close_matches(word.split("=")[0], options, n=1)
            said.append(f"{word} (did you mean {near[0]}?)" if near else word)
        own.error(f"unrecognized arguments: {' '.join(said)}")
    if args.command in (None, "demo"):
        return 0 if demo(getattr(args, "seed", 0)) else 1
    if args.command == "report":
        from ._report import report_command

        try:
            return report_command(parser, args)
        except KeyboardInterrupt:     # Ctrl-C: a line, not a traceback (as pip and pytest)
            print(f"itermap report: interrupted; the report is written to {args.out} only "
                  f"once complete", file=sys.stderr)
            return 130
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
