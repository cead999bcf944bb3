"""Checks for the exercises of notebook 00 (quickstart).

Each ``check_*`` takes your answer, prints what is right or wrong with a hint, and returns a verdict: true
or false in code, invisible in a notebook (a cell ending with a check shows only its message).
It never raises: an exercise you have not tried yet (``None``, or a function that still raises
``NotImplementedError``) just gets a friendly reminder, so the notebook runs top to bottom.
"""

from __future__ import annotations

import numpy as np
import torch

from vdiff_edu.utils import to_uint8

from ._checking import call as _call
from ._checking import fail as _fail
from ._checking import ok as _ok
from ._checking import verdict


@verdict
def check_labels_for(labels_for) -> bool:
    """``labels_for(number)`` → the list of the number's decimal digits, most significant first."""
    cases = {2024: [2, 0, 2, 4], 7: [7], 0: [0], 1000: [1, 0, 0, 0], 31415: [3, 1, 4, 1, 5]}
    for number, want in cases.items():
        got, msg = _call(labels_for, "labels_for", number)
        if msg:
            print(msg)
            return False
        try:
            got_list = [int(d) for d in got]
        except (TypeError, ValueError):
            return _fail(f"labels_for({number}) returned {got!r}, not a list of digits",
                         "return a list of ints, e.g. [int(c) for c in str(number)]")
        if got_list != want:
            hint = ("keep the zeros: 2024 has four digits" if len(got_list) < len(want) else
                    "read the digits left to right, most significant first" if got_list == want[::-1] else
                    "str(number) gives the digits as characters")
            return _fail(f"labels_for({number}) gave {got_list}, expected {want}", hint)
    return _ok("labels_for works: try pipe(labels=labels_for(your_birthday))")


@verdict
def check_to_file_format(to_file_format) -> bool:
    """``to_file_format(video (n, 1, f, h, w) in [-1, 1])`` → uint8 ``(n, f, h, w)``, -1 → 0, +1 → 255."""
    g = torch.Generator().manual_seed(0)
    video = torch.rand(2, 1, 3, 4, 5, generator=g) * 2 - 1
    video[0, 0, 0, 0, :3] = torch.tensor([-1.0, 1.0, 0.0])
    want = to_uint8(video[:, 0]).numpy()  # the package's conversion, the one samples.npy is written with
    got, msg = _call(to_file_format, "to_file_format", video.clone())
    if msg:
        print(msg)
        return False
    got = got.numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    if got.shape != want.shape:
        return _fail(f"shape {got.shape}, expected {want.shape} = (n, f, h, w)",
                     "drop the channel axis: video[:, 0]")
    if got.dtype != np.uint8:
        return _fail(f"dtype {got.dtype}, expected uint8", "convert at the end with .astype(np.uint8) or .to(torch.uint8)")
    if got[0, 0, 0, 0] != 0 or got[0, 0, 0, 1] != 255:
        return _fail(f"-1 became {got[0, 0, 0, 0]} and +1 became {got[0, 0, 0, 1]}; expected 0 and 255",
                     "map [-1, 1] to [0, 255] with (x + 1) * 127.5")
    if np.abs(got.astype(int) - want.astype(int)).max() > 0:
        return _fail("some values are off by one", "round to the nearest integer (np.rint or torch.round) "
                     "before converting to uint8, which would otherwise cut off the fraction")
    return _ok("to_file_format matches samples.npy's convention")
