"""What every ``checks_NN`` module shares: run the learner's function safely and print a verdict.

A check never raises. ``call`` turns an exercise that is not tried yet (``None``, or a function that still raises
``NotImplementedError``) into a friendly reminder and any other error into a one-line message; ``ok`` and ``fail``
print the verdict (with a hint on failure) and return True or False, so a check can ``return fail(...)``.
``@verdict`` turns that True or False into a ``Verdict``: true or false for code (``if check_x(fn): ...``), but
invisible in a notebook, so a cell that ends with a check shows its message and no stray ``True`` / ``False``.
"""

from __future__ import annotations

import functools
import traceback

import torch

class Verdict:
    """What a check returns: true when the answer is right. Jupyter shows nothing for it (the check has already
    printed its message); ``bool(v)`` or ``if v:`` reads it, ``v.passed`` is the plain bool."""

    def __init__(self, passed: bool):
        self.passed = bool(passed)

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"Verdict(passed={self.passed})"

    def _ipython_display_(self) -> None:  # a cell ending with a check echoes nothing
        pass


def verdict(check):
    """Decorate a ``check_*`` function: its True or False comes back as a ``Verdict``."""

    @functools.wraps(check)
    def wrapper(*args, **kwargs) -> Verdict:
        return Verdict(check(*args, **kwargs))

    return wrapper


NOT_YET = "⏳ {name}: not attempted yet. Fill in the function above and run the cell again."


def ok(msg: str) -> bool:
    print(f"✅ {msg}")
    return True


def fail(msg: str, hint: str = "") -> bool:
    print(f"❌ {msg}" + (f"\n   Hint: {hint}" if hint else ""))
    return False


def call(fn, name: str, *args):
    """Call the learner's function; return (result, None) or (None, a message) when it was not tried or crashed."""
    if fn is None:
        return None, NOT_YET.format(name=name)
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, NOT_YET.format(name=name)
    except Exception as err:  # show the learner's error without stopping the notebook
        last = traceback.format_exception_only(type(err), err)[-1].strip()
        return None, f"❌ {name} raised {last}"


def close(a, b, atol: float = 1e-5) -> bool:
    """True when the answer ``a`` is a tensor of ``b``'s shape and values (compared in float64)."""
    return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a.double(), b.double(), atol=atol)
