"""The evaluation stands apart: nothing under ``vdiff_edu/eval`` may import the generator's model code.

Metrics that import the model they judge can quietly share its bugs (a shared helper, a shared normalisation),
and a suite that needs the generator cannot score clips from anywhere else. Two checks: every import statement
under ``vdiff_edu/eval`` (read with ``ast``, so imports inside functions count too), and what importing the whole
sub-package really loads, in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVAL_DIR = ROOT / "vdiff_edu" / "eval"
# the generator: its networks, its training and sampling, and the recipes that assemble them
MODEL_MODULES = ("unet", "blocks", "attention", "embeddings", "autoencoder", "train", "sampling", "pipeline", "presets",
                 "conditioning", "recipe", "text")
FORBIDDEN = tuple(f"vdiff_edu.{name}" for name in MODEL_MODULES)
EVAL_FILES = sorted(EVAL_DIR.glob("*.py"))


def is_forbidden(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def imported_modules(source: str, package: str) -> set[str]:
    """The absolute names of every module ``source`` (a file of ``package``) imports, anywhere in the file:
    ``from ..unet import X`` → ``vdiff_edu.unet`` (and ``vdiff_edu.unet.X``, in case X is a module),
    ``from .. import unet`` → ``vdiff_edu.unet``, plus the string arguments of ``import_module`` / ``__import__``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")):
            found.add(node.args[0].value)
    return found


def test_the_eval_package_is_there():
    names = {p.stem for p in EVAL_FILES}
    assert {"__init__", "feature_nets", "metrics", "report", "training", "cli"} <= names, names


def test_the_checker_sees_every_spelling_of_an_import():
    # if the checker missed a spelling, the boundary test below could pass with the boundary broken
    source = ("from ..unet import UNet3D\nfrom .. import sampling\nimport vdiff_edu.pipeline as p\n"
              "def f():\n    from ..blocks import ResBlock3d\n"
              "import importlib\nimportlib.import_module('vdiff_edu.presets')\nfrom .metrics import flicker\n"
              "from ..train_notes import x\nfrom .training import train_feature_nets\n")
    found = imported_modules(source, "vdiff_edu.eval")
    assert sorted(m for m in found if is_forbidden(m)) == [
        "vdiff_edu.blocks", "vdiff_edu.blocks.ResBlock3d", "vdiff_edu.pipeline", "vdiff_edu.presets",
        "vdiff_edu.sampling", "vdiff_edu.unet", "vdiff_edu.unet.UNet3D"]
    assert {"vdiff_edu.eval.metrics", "vdiff_edu.eval.training", "vdiff_edu.train_notes"} <= found  # allowed
    assert imported_modules("from . import report\n", "vdiff_edu.eval") == {"vdiff_edu.eval", "vdiff_edu.eval.report"}


@pytest.mark.parametrize("path", EVAL_FILES, ids=lambda p: p.name)
def test_no_eval_module_imports_the_generator(path):
    package = ".".join(path.relative_to(ROOT).parts[:-1])  # vdiff_edu.eval
    bad = sorted(m for m in imported_modules(path.read_text(), package) if is_forbidden(m))
    assert not bad, (f"{path.relative_to(ROOT)} imports {bad}: the evaluation must not depend on the generator's "
                     f"model code; move what it needs to a shared module (utils, moving_mnist, similarity) instead")


def test_importing_the_eval_package_loads_no_generator_module():
    modules = sorted(f"vdiff_edu.eval.{p.stem}" for p in EVAL_FILES if p.stem != "__init__")
    code = ("import importlib, json, sys\n"
            f"for name in {modules!r}:\n    importlib.import_module(name)\n"
            "print(json.dumps({'modules': sorted(sys.modules), 'file': sys.modules['vdiff_edu'].__file__}))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(loaded["file"]).resolve() == (ROOT / "vdiff_edu" / "__init__.py").resolve()  # this checkout's copy
    assert set(modules) <= set(loaded["modules"])
    bad = sorted(m for m in loaded["modules"] if is_forbidden(m))
    assert not bad, f"importing vdiff_edu.eval loaded the generator's modules {bad}"
