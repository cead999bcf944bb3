"""Showing videos: GIF round trips, grids, inline HTML, figures on Agg, and the scrubber's static fallback."""

from __future__ import annotations

import base64
import io
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image, ImageSequence  # noqa: E402

from vdiff_edu import viz  # noqa: E402
from vdiff_edu.schedule import NoiseSchedule  # noqa: E402
from vdiff_edu.utils import to_uint8  # noqa: E402


def _moving_square(b: int = 1, f: int = 5, size: int = 16) -> torch.Tensor:
    """(b, 1, f, size, size) in [-1, 1]: a 4-px white square moving right one pixel per frame (every frame differs)."""
    x = -torch.ones(b, 1, f, size, size)
    for i in range(b):
        for k in range(f):
            x[i, 0, k, 2 + i : 6 + i, k : k + 4] = 1.0
    return x


def _read_gif(path) -> list[np.ndarray]:
    with Image.open(path) as im:
        return [np.array(frame.convert("L")) for frame in ImageSequence.Iterator(im)]


# ----------------------------------------------------------------------------------------------------------------
# Pixel mapping and accepted shapes


@pytest.mark.parametrize(
    "video,expected",
    [
        (torch.zeros(5, 8, 9), (1, 5, 8, 9, 1)),  # (f, h, w)
        (torch.zeros(1, 5, 8, 9), (1, 5, 8, 9, 1)),  # (c, f, h, w)
        (torch.zeros(3, 5, 8, 9), (1, 5, 8, 9, 3)),  # RGB clip
        (torch.zeros(2, 1, 5, 8, 9), (2, 5, 8, 9, 1)),  # (b, c, f, h, w)
        (torch.zeros(2, 4, 5, 8, 9), (8, 5, 8, 9, 1)),  # 4 latent channels → 4 grey clips each
        (np.zeros((6, 5, 8, 9), np.uint8), (6, 5, 8, 9, 1)),  # uint8 (n, f, h, w)
        ([torch.zeros(1, 5, 8, 9), torch.zeros(2, 1, 5, 8, 9)], (3, 5, 8, 9, 1)),  # a list is stacked
    ],
)
def test_as_clips_shapes(video, expected):
    assert viz._as_clips(video).shape == expected


def test_bad_shapes_teach():
    with pytest.raises(ValueError, match=r"\(f, h, w\).*got shape \(8, 9\)"):
        viz.show_video(torch.zeros(8, 9))
    with pytest.raises(ValueError, match="same"):
        viz.filmstrip([torch.zeros(1, 5, 8, 8), torch.zeros(1, 4, 8, 8)])
    with pytest.raises(ValueError, match="fps"):
        viz.show_video(torch.zeros(1, 2, 4, 4), fps=0)
    with pytest.raises(ValueError, match="scale"):
        viz.show_video(torch.zeros(1, 2, 4, 4), scale=0)


# ----------------------------------------------------------------------------------------------------------------
# GIFs and grids


def test_gif_round_trip(tmp_path):
    clip = _moving_square(f=5)[0]  # (1, 5, 16, 16)
    path = viz.save_gif(clip, tmp_path / "sub" / "clip.gif", fps=5, scale=1)
    assert path == str(tmp_path / "sub" / "clip.gif")
    frames = _read_gif(path)
    assert len(frames) == 5 and frames[0].shape == (16, 16)
    np.testing.assert_array_equal(np.stack(frames), to_uint8(clip[0]).numpy())  # exact pixels back
    with Image.open(path) as im:
        assert im.info["duration"] == 200 and im.info["loop"] == 0
    assert not list((tmp_path / "sub").glob("*.tmp"))  # atomic write leaves no temporary file


def test_gif_scale_and_uint8_input(tmp_path):
    frames_u8 = to_uint8(_moving_square(f=4)[0, 0]).numpy()  # (4, 16, 16) uint8
    path = viz.save_gif(frames_u8, tmp_path / "big.gif", scale=3)
    frames = _read_gif(path)
    assert len(frames) == 4 and frames[0].shape == (48, 48)
    np.testing.assert_array_equal(frames[2][::3, ::3], frames_u8[2])  # nearest-neighbour enlargement


def test_gif_of_a_batch_is_a_grid(tmp_path):
    batch = _moving_square(b=3, f=4)  # (3, 1, 4, 16, 16)
    frames = _read_gif(viz.save_gif(batch, tmp_path / "grid.gif", nrow=2, scale=1))
    assert len(frames) == 4 and frames[0].shape == (2 * 20, 2 * 20)  # 2 rows × 2 columns of 16 + 2·2 px
    np.testing.assert_array_equal(frames[1][2:18, 22:38], to_uint8(batch[1, 0, 1]).numpy())  # clip 1: row 0, col 1


@pytest.mark.parametrize("n,nrow,rows,cols", [(1, 8, 1, 1), (5, 8, 1, 5), (5, 2, 3, 2), (6, 3, 2, 3), (4, None, 1, 4)])
def test_video_grid_shapes(n, nrow, rows, cols):
    grid = viz.video_grid(torch.zeros(n, 1, 3, 10, 12), nrow=nrow, pad=1)
    assert grid.shape == (3, rows * 12, cols * 14, 1) and grid.dtype == np.uint8
    assert grid[0, 0, 0, 0] == 64  # dark grey padding keeps black clips apart


def test_video_grid_places_clips_row_major():
    batch = torch.stack([torch.full((1, 2, 4, 4), v) for v in (-1.0, 0.0, 1.0)])  # (3, 1, 2, 4, 4)
    grid = viz.video_grid(batch, nrow=2, pad=0)  # (2, 8, 8, 1)
    assert grid[0, 0, 0, 0] == 0 and grid[0, 0, 4, 0] == 128 and grid[0, 4, 0, 0] == 255
    assert grid[0, 4, 4, 0] == 64  # the empty fourth cell is padding


def test_show_video_returns_html_with_an_animated_gif():
    html = viz.show_video(_moving_square(b=2, f=5), fps=4, title="two <clips>")
    text = html.data if hasattr(html, "data") else html
    assert "two &lt;clips&gt;" in text  # the title is escaped
    payload = re.search(r"data:image/gif;base64,([A-Za-z0-9+/=]+)", text).group(1)
    raw = base64.b64decode(payload)
    assert raw[:6] == b"GIF89a"
    import io

    with Image.open(io.BytesIO(raw)) as im:
        assert im.n_frames == 5
        assert im.size == (2 * 20 * 4, 20 * 4)  # auto scale: a 40 × 20 px grid is enlarged ×4 (the cap)


@pytest.mark.parametrize("side,scale", [(16, 4), (64, 4), (204, 2), (300, 1), (1000, 1)])
def test_auto_scale(side, scale):
    assert viz._auto_scale(side, side // 2) == scale  # the largest ×1..×4 keeping the longer side within 512 px


# ----------------------------------------------------------------------------------------------------------------
# Figures (Agg) and the scrubber


def test_filmstrip_layout():
    fig = viz.filmstrip(_moving_square(b=3, f=12), labels=["a", "b", "c"], title="strip")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3 * 10  # 3 clips × at most 10 frames by default
    fig = viz.filmstrip(_moving_square(b=2, f=12), frames=[0, 5, -1])
    assert len(fig.axes) == 2 * 3 and fig.axes[2].get_title() == "frame 11"
    fig = viz.filmstrip(_moving_square(b=1, f=3), column_labels=["s=1", "s=3", "s=5"])  # columns that are not frames
    assert [ax.get_title() for ax in fig.axes] == ["s=1", "s=3", "s=5"]
    with pytest.raises(ValueError, match="labels"):
        viz.filmstrip(_moving_square(b=2), labels=["only one"])
    with pytest.raises(ValueError, match="column_labels"):
        viz.filmstrip(_moving_square(b=1, f=3), column_labels=["a"])
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        viz.filmstrip(_moving_square(b=1, f=5), frames=[7])


def test_plot_schedules_and_loss():
    schedules = {k: NoiseSchedule(k, 100) for k in ("linear", "cosine")}
    fig = viz.plot_schedules(schedules)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]
    assert len({line.get_linestyle() for line in fig.axes[0].lines}) == 2  # coinciding curves stay visible
    viz.plot_schedules([NoiseSchedule("cosine", 5)]).savefig(io.BytesIO())  # markers on a very short schedule too
    fig = viz.plot_schedules([NoiseSchedule("cosine", 100, zero_terminal_snr=True)])  # −∞ log-SNR is skipped
    assert "zero terminal SNR" in fig.axes[0].get_legend().get_texts()[0].get_text()
    histories = (
        [1.0, 0.5, 0.4],  # one number per step
        {"loss": [1.0, 0.5], "val": [1.1, 0.6]},  # {name: values}
        [{"step": 0, "loss": 1.0}, {"step": 10, "loss": 0.5}],  # a list of records
    )
    for history in histories:
        fig = viz.plot_loss(history)
        assert isinstance(fig, Figure) and len(fig.axes[0].lines) == 2 * (2 if isinstance(history, dict) else 1)
    stages = {"A": {"step": [1, 2, 3], "loss": [1.0, 0.8, 0.7]}, "B": {"step": [4, 5], "loss": [0.9, 0.6]}}
    fig = viz.plot_loss(stages, smooth=0)  # each curve on its own steps: B continues after A
    assert [line.get_xdata().tolist() for line in fig.axes[0].lines] == [[1, 2, 3], [4, 5]]
    with pytest.raises(TypeError, match="history"):
        viz.plot_loss(["a", "b"])


def test_scrubber_static_fallback():
    xs = [_moving_square(f=6)[0] * (1 - k / 5) for k in range(5)]  # 5 steps of a (1, 6, 16, 16) clip
    fig = viz.diffusion_scrubber(xs, ts=[999, 750, 500, 250, 0], static=True)
    assert isinstance(fig, Figure) and len(fig.axes) == 5 * 6  # steps × frames
    assert fig.axes[0].get_ylabel() == "t=999"
    # outside a notebook (as here) the fallback is used even without static=True; a stacked tensor works too
    fig = viz.diffusion_scrubber(torch.stack(xs), max_rows=3, frames=2)
    assert isinstance(fig, Figure) and len(fig.axes) == 3 * 2
    with pytest.raises(ValueError, match="one diffusion step per"):
        viz.diffusion_scrubber(xs, ts=[1, 2])


def test_scrubber_widget_path(monkeypatch):
    widgets = pytest.importorskip("ipywidgets")
    monkeypatch.setattr(viz, "_in_notebook", lambda: True)
    xs = torch.stack([_moving_square(b=2, f=4) * s for s in (0.0, 0.5, 1.0)])  # (3 steps, 2, 1, 4, 16, 16)
    shown = viz.diffusion_scrubber(xs, ts=[999, 500, 0])  # a sampler's order: noise first
    assert isinstance(shown, viz.WidgetWithStatic)
    box = shown.widget
    assert isinstance(box, widgets.VBox)
    step, frame = box.children[0].children
    label, image = box.children[1], box.children[2]
    assert step.options == (0, 500, 999) and step.value == 0  # the slider's value is t; it starts at the clean clip
    assert frame.max == 3
    np.testing.assert_array_equal(np.array(Image.open(io.BytesIO(image.value)))[::8, ::8],  # the t = 0 entry, ×8
                                  viz.video_grid(xs[2])[0, ..., 0])
    first = image.value
    step.value, frame.value = 999, 3
    assert label.value == "t = 999, frame 3" and image.value != first
    with pytest.raises(ValueError, match="once"):
        viz.diffusion_scrubber(xs, ts=[0, 0, 1])


@pytest.mark.parametrize("side,scale,width", [(16, None, 128), (64, None, 384), (64, 8, 400), (300, None, 300)])
def test_scrubber_picture_fits_next_to_its_slider(monkeypatch, side, scale, width):
    pytest.importorskip("ipywidgets")
    monkeypatch.setattr(viz, "_in_notebook", lambda: True)
    xs = [torch.zeros(1, 2, side, side), torch.ones(1, 2, side, side)]  # 2 steps of a (1, 2, side, side) clip
    image = viz.diffusion_scrubber(xs, scale=scale).widget.children[2]
    assert image.layout.width == f"{width}px" and image.layout.height == f"{width}px"  # never wider than 400 px
    assert Image.open(io.BytesIO(image.value)).size[0] == side * (scale or width // side)  # crisp: whole pixels


def test_widgets_keep_a_static_picture(monkeypatch):
    """What stays in a saved notebook: the scrubber's strip of frame 0 by t, shown before the widget."""
    pytest.importorskip("ipywidgets")
    monkeypatch.setattr(viz, "_in_notebook", lambda: True)
    xs = [_moving_square(f=3)[0] * k for k in (1.0, 0.5, 0.0)]
    shown = viz.diffusion_scrubber(xs, ts=[0, 10, 20])
    assert isinstance(shown.static, Figure)
    assert [ax.get_title() for ax in shown.static.axes] == ["t=0", "t=10", "t=20"]
    shown_order = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown_order.append(obj))
    shown._ipython_display_()
    picture, widget = shown_order  # the picture first, then the live widget ...
    assert picture is shown.static
    assert widget["application/vnd.jupyter.widget-view+json"]["model_id"] == shown.widget.model_id
    assert widget["text/plain"] == viz.WIDGET_PLACEHOLDER  # ... which says what it is where it cannot be drawn


def test_scrubber_falls_back_without_ipywidgets(monkeypatch):
    monkeypatch.setattr(viz, "_in_notebook", lambda: True)
    monkeypatch.setitem(__import__("sys").modules, "ipywidgets", None)  # `import ipywidgets` now raises ImportError
    fig = viz.diffusion_scrubber([_moving_square(f=3)[0]] * 2)
    assert isinstance(fig, Figure) and len(fig.axes) == 2 * 3
