"""What every ``checks_NN`` module shares: run the learner's function safely and print a verdict.

A check never raises. ``call`` turns an exercise that is not tried yet (``None``, or a function that still raises
``NotImplementedError``) into a friendly reminder and any other error into a one-line message; ``ok`` and ``fail``
print the verdict (with a hint on failure) and return True or False, so a check can ``return fail(...)``.
"""

from __future__ import annotations

import traceback

import torch

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
