"""What every exercise check shares: it prints its message and returns a verdict that a notebook does not echo."""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture
def exercises(monkeypatch):
    monkeypatch.syspath_prepend(str(NOTEBOOKS))
    yield
    for name in [m for m in sys.modules if m == "exercises" or m.startswith("exercises.")]:
        sys.modules.pop(name)


def _not_yet(*args):
    raise NotImplementedError


@pytest.mark.parametrize("nn", [f"{i:02d}" for i in range(10)])
def test_every_check_returns_a_verdict_that_jupyter_does_not_echo(exercises, nn, capsys):
    from IPython.core.formatters import DisplayFormatter

    module = importlib.import_module(f"exercises.checks_{nn}")
    checks = [f for name, f in inspect.getmembers(module, inspect.isfunction) if name.startswith("check_")]
    assert checks, f"checks_{nn} has no check_* functions"
    for check in checks:
        result = check(_not_yet)
        assert not result and type(result).__name__ == "Verdict", check.__name__
        assert DisplayFormatter().format(result) == ({}, {})  # a cell ending with a check shows no True / False
    assert "not attempted yet" in capsys.readouterr().out  # the message is printed instead
