"""Checks on the repository itself: notebooks are committed clean and follow the course conventions."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))


def _cells(nb_path: Path) -> list[dict]:
    return json.loads(nb_path.read_text())["cells"]


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def test_the_course_has_notebooks():
    assert len(NOTEBOOKS) >= 2, f"expected the course notebooks under {ROOT / 'notebooks'}, found {NOTEBOOKS}"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_without_outputs(nb_path):
    dirty = [i for i, c in enumerate(_cells(nb_path))
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, (f"{nb_path.name}: code cells {dirty} hold outputs or execution counts; "
                       f"strip them (jupyter nbconvert --clear-output --inplace {nb_path.name}) before committing")


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_smoke_parameters_cell(nb_path):
    code = [c for c in _cells(nb_path) if c["cell_type"] == "code"]
    first = code[0]
    assert "parameters" in first.get("metadata", {}).get("tags", []), \
        f"{nb_path.name}: the first code cell must be tagged 'parameters'"
    assert "VDIFF_SMOKE" in _source(first), f"{nb_path.name}: the parameters cell must read VDIFF_SMOKE"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_intro_summary_and_exercises(nb_path):
    text = "\n".join(_source(c) for c in _cells(nb_path) if c["cell_type"] == "markdown")
    for heading in ("What you'll build", "What you need", "What you'll learn", "Summary", "Exercises"):
        assert re.search(re.escape(heading), text, re.IGNORECASE), f"{nb_path.name}: missing a '{heading}' section"


def test_nothing_from_shared_is_committed():
    # The offline MNIST copy in ../shared is for development only; the repo must not carry idx files.
    idx = [p for p in ROOT.rglob("*idx*-ubyte*") if ".venv" not in p.parts and "cache" not in p.parts]
    assert not idx, f"MNIST idx files must not be committed: {idx}"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_stubs_do_not_hold_the_answer_in_a_comment(nb_path):
    # a stub is "# YOUR CODE HERE" then "raise NotImplementedError": a comment after the raise gives the answer away
    hinted = [line.strip() for c in _cells(nb_path) if c["cell_type"] == "code"
              for line in _source(c).splitlines() if re.match(r"\s*raise NotImplementedError\s*#", line)]
    assert not hinted, f"{nb_path.name}: exercise stubs with the answer beside them: {hinted}"


# viz functions that return their picture instead of drawing it: a Figure closed on pyplot's side (viz._finish), the
# HTML animation, the scrubber widget. Jupyter shows one only when it is the value of the cell, so a call anywhere
# else shows nothing, silently
RETURNS_A_PICTURE = {"filmstrip", "plot_schedules", "plot_loss", "show_video", "diffusion_scrubber"}


def _figures_never_drawn(source: str) -> list[int]:
    """Line numbers of bare calls to a RETURNS_A_PICTURE function that are not the cell's last statement."""
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    tree = ast.parse(code)
    last = tree.body[-1] if tree.body else None
    lost = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and node is not last:
            func = node.value.func
            if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) in RETURNS_A_PICTURE:
                lost.append(node.lineno)
    return lost


def test_a_figure_that_is_not_the_cells_value_is_found():
    assert _figures_never_drawn("viz.filmstrip(x)\nprint('done')") == [1]  # the figure is lost
    assert _figures_never_drawn("for c in clips:\n    viz.plot_loss(c)") == [2]  # in a loop: lost too
    assert _figures_never_drawn("print('first')\nviz.filmstrip(x)") == []  # the cell's value: drawn
    assert _figures_never_drawn("display(viz.filmstrip(x))\nprint('done')") == []  # shown explicitly
    assert _figures_never_drawn("viz.show_video(v)\nx = 1") == [1]  # an animation is lost the same way


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_is_drawn(nb_path):
    lost = {i: lines for i, c in enumerate(_cells(nb_path))
            if c["cell_type"] == "code" and (lines := _figures_never_drawn(_source(c)))}
    assert not lost, (f"{nb_path.name}: cells {sorted(lost)} call a viz function that returns a picture, but not as "
                      f"the cell's last line, so Jupyter never draws it (lines {lost}); make it the last line or "
                      f"wrap it in display(...)")
