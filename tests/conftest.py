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
