"""Round 23: a report section's random draws are keyed by what it is, not where it stands.

A researcher who adds an analysis to a report expects the others' numbers to stay the same;
with the stream keyed by the section's position, inserting one in front changed the draws
(the start, the tangent frame) of every section after it."""

from __future__ import annotations

import pytest

from itermap.analysis._report import run_report

NETS = {"a": {"kind": "random_rnn", "n": 8, "gain": 1.5},
        "b": {"kind": "random_rnn", "n": 6, "gain": 1.2}}
LYAP_A = {"kind": "lyapunov", "network": "a", "steps": 60, "k": 2, "transient": 5, "starts": 2}


def _numbers(tmp_path, name, analyses):
    doc = run_report({"seed": 5, "networks": NETS, "analyses": analyses}, tmp_path / name,
                     progress=False)
    assert doc["failed"] == []
    return [a["numbers"] for a in doc["analyses"]]


@pytest.mark.parametrize("front", [
    {"kind": "trajectory", "network": "a", "steps": 10, "transient": 0},  # another kind
    {**LYAP_A, "network": "b"},                                          # another network
], ids=["another kind", "another network"])
def test_a_section_added_in_front_leaves_the_others_numbers_bit_identical(tmp_path, front):
    alone = _numbers(tmp_path, "alone", [LYAP_A])[0]
    after = _numbers(tmp_path, "after", [front, LYAP_A])[1]
    assert after == alone  # JSON floats: equal only bit for bit
    # and removing it again: the same section, last of three, still draws the same
    assert _numbers(tmp_path, "three", [front, dict(front), LYAP_A])[2] == alone


def test_two_identical_sections_draw_apart_and_the_first_as_alone(tmp_path):
    alone = _numbers(tmp_path, "alone", [LYAP_A])[0]
    first, second = _numbers(tmp_path, "twice", [LYAP_A, dict(LYAP_A)])
    assert first == alone
    # another start and frame: the finite-time estimates differ (the limit is the same)
    assert second["exponents"] != first["exponents"]
    assert abs(second["exponents"][0] - first["exponents"][0]) < 0.5
