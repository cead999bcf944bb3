"""Test-wide settings: tests never touch the network and never write outside their temporary folders."""

from __future__ import annotations

import os
import tempfile

import matplotlib

matplotlib.use("Agg")

# Set before any vdiff_edu module reads them. A digit folder the developer set (VDIFF_MNIST_DIR) is kept, so
# the tests can run on real digits; otherwise they use the offline synthetic digits.
os.environ["VDIFF_OFFLINE"] = "1"
os.environ.setdefault("VDIFF_SMOKE", "1")
os.environ["VDIFF_CACHE_DIR"] = tempfile.mkdtemp(prefix="vdiff-test-cache-")
os.environ["VDIFF_RUNS_DIR"] = tempfile.mkdtemp(prefix="vdiff-test-runs-")


import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread, and a busy machine is not oversubscribed; restored afterwards.
    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
