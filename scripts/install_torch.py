"""Install PyTorch into the current environment, choosing the CPU build on machines without an NVIDIA GPU.

PyPI's Linux torch wheel bundles CUDA (several GB). On a machine with no NVIDIA GPU we ask PyTorch's CPU
index first (a ~200 MB wheel) when it can be reached, and fall back to the plain package otherwise (for
example behind a proxy that only lets a package mirror through). Does nothing if torch is already installed
at a version that fits requirements.txt.
"""

from __future__ import annotations

import platform
import shutil
import socket
import subprocess
import sys

TORCH = "torch==2.13.0"
CPU_INDEX_HOST = "download.pytorch.org"
CPU_INDEX = f"https://{CPU_INDEX_HOST}/whl/cpu"


def installed() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    major, minor = (int(p) for p in torch.__version__.split(".")[:2])
    return (2, 3) <= (major, minor) < (2, 14)


def reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def main() -> int:
    if installed():
        print("torch already installed")
        return 0
    pip = [sys.executable, "-m", "pip", "install", "-q", TORCH]
    has_gpu = shutil.which("nvidia-smi") is not None
    if platform.system() == "Linux" and not has_gpu and reachable(CPU_INDEX_HOST):
        print(f"no NVIDIA GPU found: installing the CPU build of {TORCH}")
        if subprocess.call(pip + ["--index-url", CPU_INDEX]) == 0:
            return 0
        print("the CPU index failed; falling back to the default package index")
    return subprocess.call(pip)


if __name__ == "__main__":
    sys.exit(main())
