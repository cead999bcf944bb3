"""The shared switches: the step cap of ``make check-full`` (VDIFF_MAX_STEPS)."""

from __future__ import annotations

import pytest

from vdiff_edu.config import capped, max_steps


def test_no_cap_when_unset_or_empty(monkeypatch):
    monkeypatch.delenv("VDIFF_MAX_STEPS", raising=False)
    assert max_steps() is None and capped(4_000) == 4_000 and capped(3, floor=10) == 3
    monkeypatch.setenv("VDIFF_MAX_STEPS", "")
    assert max_steps() is None and capped(50) == 50


def test_cap_cuts_but_never_raises_a_count(monkeypatch):
    monkeypatch.setenv("VDIFF_MAX_STEPS", "2")
    assert max_steps() == 2
    assert [capped(n) for n in (4_000, 50, 2, 1)] == [2, 2, 2, 1]  # min(n, cap): a small count stays as it is
    assert capped(256, floor=16) == 16  # the floor keeps a covariance computable
    assert capped(10, floor=16) == 10  # ... but never lifts a count above its full-mode value
    monkeypatch.setenv("VDIFF_MAX_STEPS", " 30 ")
    assert capped(256, floor=16) == 30 and capped(5) == 5


@pytest.mark.parametrize("bad", ["0", "-1", "two", "2.5", "²"])
def test_a_bad_cap_says_what_was_expected_given_and_how_to_fix_it(monkeypatch, bad):
    monkeypatch.setenv("VDIFF_MAX_STEPS", bad)
    with pytest.raises(ValueError, match=rf"VDIFF_MAX_STEPS must be a positive integer; got '{bad}'\. "
                                         r"Set it to a step cap such as VDIFF_MAX_STEPS=2"):
        capped(10)
