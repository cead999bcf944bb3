"""Showing videos: inline animation (no ffmpeg), GIF files, grids, filmstrips, schedule and loss plots, and a
slider over diffusion step × frame that leaves a static picture in the saved notebook.

Pixel values live in [-1, 1] inside the toolkit; here they become bytes with ``utils.to_uint8``:

    byte = round((x + 1) / 2 · 255),   clipped to 0..255      (-1 → 0 black background, +1 → 255 white digit)

Every function accepts the same kinds of input and turns them into "clips" first:

    (f, h, w)          one clip, one channel           float in [-1, 1] (torch or numpy) or uint8
    (c, f, h, w)       one clip                        float
    (n, f, h, w)       a batch of one-channel clips    uint8 only (the file format; 0 = background)
    (b, c, f, h, w)    a batch of clips                float or uint8
    a list of any of the above (stacked along the batch axis; all clips the same size)

Channels: 1 is shown as grey, 3 as RGB, any other number (for example 4 latent channels) is shown as that many
grey clips side by side, so a latent can be looked at too.

Figures are returned, not shown: in Jupyter a cell that ends with ``filmstrip(...)`` draws it once; in a script
call ``fig.savefig(path)``. (Each figure is closed on pyplot's side so notebooks don't draw it twice.)
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from einops import rearrange
from PIL import Image

from .utils import atomic_path, to_uint8

# ----------------------------------------------------------------------------------------------------------------
# Turning anything video-like into uint8 clips (n, f, h, w, C), C in {1, 3}


def _as_clips(video: Any) -> np.ndarray:
    """Any accepted input (see the module docstring) → uint8 numpy ``(n, f, h, w, C)`` with C = 1 or 3."""
    if isinstance(video, (list, tuple)):
        if len(video) == 0:
            raise ValueError("got an empty list of videos; pass at least one clip")
        parts = [_as_clips(v) for v in video]
        sizes = {p.shape[1:] for p in parts}
        if len(sizes) > 1:
            raise ValueError(
                f"all clips in a list must have the same (frames, height, width, channels); got {sorted(sizes)}. "
                "Resize or trim them first, or show them one at a time."
            )
        return np.concatenate(parts, axis=0)  # (n, f, h, w, C)

    if isinstance(video, torch.Tensor):
        is_uint8 = video.dtype == torch.uint8
        arr = video.detach().cpu().numpy()
    else:
        arr = np.asarray(video)
        is_uint8 = arr.dtype == np.uint8
    shape = tuple(arr.shape)

    if arr.ndim == 3:  # (f, h, w)
        arr = arr[None, None]  # (1, 1, f, h, w)
    elif arr.ndim == 4 and is_uint8:  # (n, f, h, w): the uint8 file format
        arr = arr[:, None]  # (n, 1, f, h, w)
    elif arr.ndim == 4:  # (c, f, h, w)
        arr = arr[None]  # (1, c, f, h, w)
    elif arr.ndim != 5:
        raise ValueError(
            f"expected a video of shape (f, h, w), (c, f, h, w), (b, c, f, h, w) or uint8 (n, f, h, w); "
            f"got shape {shape}. A single frame (h, w) is a video with one frame: add an axis with x[None]."
        )
    b, c, f, h, w = arr.shape
    if min(b, c, f, h, w) == 0:
        raise ValueError(f"cannot show an empty video; got shape {shape} (every axis must be at least 1)")

    if not is_uint8:
        arr = to_uint8(arr)  # numpy in, numpy out
    if c == 3:  # RGB
        return rearrange(arr, "b c f h w -> b f h w c")  # (n, f, h, w, 3)
    return rearrange(arr, "b c f h w -> (b c) f h w 1")  # (n, f, h, w, 1): channels become clips


def _grid(clips: np.ndarray, nrow: int | None = None, pad: int = 2, pad_byte: int = 64) -> np.ndarray:
    """uint8 clips ``(n, f, h, w, C)`` → one uint8 clip ``(f, H, W, C)`` with ``nrow`` clips per row."""
    n, f, h, w, C = clips.shape
    ncol = n if nrow is None else max(1, min(int(nrow), n))
    nrows = math.ceil(n / ncol)
    padded = np.full((nrows * ncol, f, h + 2 * pad, w + 2 * pad, C), pad_byte, dtype=np.uint8)
    padded[:n, :, pad : pad + h, pad : pad + w] = clips  # (nrows·ncol, f, h+2p, w+2p, C)
    return rearrange(padded, "(r q) f h w c -> f (r h) (q w) c", r=nrows)  # (f, H, W, C)


def _auto_scale(h: int, w: int, target: int = 512, max_scale: int = 4) -> int:
    """The largest integer enlargement, at most ``max_scale``, that keeps the longer side within ``target`` px.

    One 64 px clip becomes 256 px (×4); a 3×2 grid of them (204 px) becomes 408 px (×2); never below ×1.
    """
    return int(max(1, min(max_scale, target // max(h, w))))


def _enlarge(frames: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement of ``(..., h, w, C)`` by an integer factor (keeps pixels crisp)."""
    if scale == 1:
        return frames
    return frames.repeat(scale, axis=-3).repeat(scale, axis=-2)  # (..., h·s, w·s, C)


def _check_scale(scale: int | None, h: int, w: int) -> int:
    if scale is None:
        return _auto_scale(h, w)
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a whole number ≥ 1 (pixels are repeated, not interpolated); got {scale!r}")
    return int(scale)


def _check_fps(fps: float) -> float:
    if not (fps > 0):
        raise ValueError(f"fps must be > 0 frames per second; got {fps!r}. Moving MNIST looks right at 4-10.")
    return float(fps)


# ----------------------------------------------------------------------------------------------------------------
# Grids and GIFs


def video_grid(batch: Any, nrow: int | None = 8, pad: int = 2) -> np.ndarray:
    """Tile a batch of clips into one clip: uint8 ``(f, H, W, C)`` with ``nrow`` clips per row.

    ``batch`` is anything ``show_video`` accepts. ``H = rows·(h + 2·pad)``, ``W = ncol·(w + 2·pad)`` where
    ``ncol = min(nrow, n)`` and ``rows = ceil(n / ncol)``; the padding is dark grey so black clips stay apart.
    ``nrow=None`` puts every clip in one row.
    """
    if nrow is not None and nrow < 1:
        raise ValueError(f"nrow (clips per row) must be ≥ 1 or None for a single row; got {nrow!r}")
    if pad < 0:
        raise ValueError(f"pad (pixels between clips) must be ≥ 0; got {pad!r}")
    return _grid(_as_clips(batch), nrow=nrow, pad=pad)


def _gif_bytes(video: Any, fps: float, scale: int | None, nrow: int | None) -> bytes:
    """Encode ``video`` (one clip or a batch, tiled) as an animated GIF that loops forever."""
    clips = _as_clips(video)  # (n, f, h, w, C)
    frames = _grid(clips, nrow=nrow) if clips.shape[0] > 1 else clips[0]  # (f, H, W, C)
    scale = _check_scale(scale, *frames.shape[1:3])
    frames = _enlarge(frames, scale)  # (f, H·s, W·s, C)
    mode = "L" if frames.shape[-1] == 1 else "RGB"
    images = [Image.fromarray(fr[..., 0] if mode == "L" else fr, mode=mode) for fr in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=max(20, round(1000 / _check_fps(fps))),  # ms per frame; browsers treat < 20 ms as 100 ms
        loop=0,  # loop forever
        optimize=False,
        disposal=1,
    )
    return buffer.getvalue()


def save_gif(video: Any, path: str | os.PathLike, fps: float = 8, scale: int | None = 1, nrow: int | None = 8) -> str:
    """Write ``video`` (one clip, or a batch tiled ``nrow`` per row) as a looping GIF at ``path``; return the path.

    ``scale`` repeats each pixel ``scale`` times (``None``: enlarge small clips, up to ×4, within 512 px). The file is
    written atomically: a crash never leaves half a GIF behind.

    Note: GIF readers (and Pillow when writing) merge consecutive identical frames, so a clip that stands
    still may read back with fewer frames.
    """
    data = _gif_bytes(video, fps=fps, scale=scale, nrow=nrow)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return str(path)


# ----------------------------------------------------------------------------------------------------------------
# Inline animation in Jupyter (an <img> holding a base64 GIF: no ffmpeg, works in any browser)


def show_video(
    video_or_batch: Any, fps: float = 8, scale: int | None = None, title: str | None = None, nrow: int | None = 8
):
    """Animate a clip, or a batch of clips as a grid, inline in Jupyter; return the ``IPython.display.HTML``.

    A cell that ends with ``show_video(clip)`` shows it; inside a loop use ``display(show_video(clip))``.
    Outside IPython the HTML object is simply returned (its ``.data`` is the HTML text).
    ``scale=None`` enlarges small clips (up to ×4, within 512 px: one 64 px clip → 256 px) with crisp pixels.
    """
    data = base64.b64encode(_gif_bytes(video_or_batch, fps=fps, scale=scale, nrow=nrow)).decode("ascii")
    img = f'<img src="data:image/gif;base64,{data}" style="image-rendering: pixelated; margin: 2px" />'
    caption = f'<div style="font-family: monospace">{html.escape(title)}</div>' if title else ""
    text = f"<div>{caption}{img}</div>"
    try:
        from IPython.display import HTML  # optional: IPython is not a dependency of the package
    except ImportError:  # IPython missing: give back the raw HTML text
        return text
    return HTML(text)


# ----------------------------------------------------------------------------------------------------------------
# Static figures (matplotlib)


def _new_figure(nrows: int, ncols: int, figsize: tuple[float, float]):
    import matplotlib.pyplot as plt  # lazily: pyplot is slow to import and only figures need it

    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)
    return fig, axes


def _finish(fig, title_inches: float = 0.0):
    """Lay the figure out (leaving ``title_inches`` at the top for a suptitle, which ``tight_layout`` alone would let
    overlap the first row's titles), close it on pyplot's side (so Jupyter draws only the returned object, once)
    and return it."""
    import matplotlib.pyplot as plt  # lazily, as in _new_figure

    fig.tight_layout(rect=(0, 0, 1, 1 - title_inches / fig.get_figheight()))
    plt.close(fig)
    return fig


def _pick_frames(num_frames: int, frames: Sequence[int] | int | None, max_frames: int = 10) -> list[int]:
    """Which frame indices a filmstrip shows: all (up to ``max_frames``, evenly spaced), an int count, or a list."""
    if frames is None:
        frames = min(num_frames, max_frames)
    if isinstance(frames, (int, np.integer)):
        if frames < 1:
            raise ValueError(f"frames must be ≥ 1 (how many frames to show) or a list of indices; got {frames}")
        return sorted(set(np.linspace(0, num_frames - 1, min(int(frames), num_frames)).round().astype(int).tolist()))
    frames = [int(i) for i in frames]
    bad = [i for i in frames if not -num_frames <= i < num_frames]
    if bad:
        raise ValueError(f"frame indices must lie in [0, {num_frames}) for clips of {num_frames} frames; got {bad}")
    return [i % num_frames for i in frames]


def filmstrip(
    videos: Any,
    labels: Sequence[str] | None = None,
    title: str | None = None,
    frames: Sequence[int] | int | None = None,
    frame_size: float = 1.1,
    column_labels: Sequence[str] | None = None,
):
    """A matplotlib figure with one row per clip and one column per frame; return the Figure.

    ``frames``: ``None`` shows up to 10 evenly spaced frames, an int shows that many, a list shows those indices.
    ``labels``: one string per row (drawn at the left). ``frame_size``: inches per frame.
    ``column_labels``: one string per column shown, instead of "frame i" (for a strip whose columns are not
    frames, e.g. one frame at several diffusion steps or guidance scales).
    """
    clips = _as_clips(videos)  # (n, f, h, w, C)
    n, f = clips.shape[:2]
    if labels is not None and len(labels) != n:
        raise ValueError(
            f"labels needs one string per row: {n} rows (clips × channels), got {len(labels)} labels"
        )
    cols = _pick_frames(f, frames)
    if column_labels is not None and len(column_labels) != len(cols):
        raise ValueError(f"column_labels needs one string per column shown: {len(cols)} columns, "
                         f"got {len(column_labels)} labels")
    width = frame_size * len(cols) + (0.6 if labels else 0)  # inches; room for the row labels
    height = frame_size * n + (0.4 if title else 0.2)
    fig, axes = _new_figure(n, len(cols), figsize=(width, height))
    for r in range(n):
        for q, i in enumerate(cols):
            ax = axes[r, q]
            frame = clips[r, i]  # (h, w, C)
            if frame.shape[-1] == 1:
                ax.imshow(frame[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            else:
                ax.imshow(frame, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"frame {i}" if column_labels is None else str(column_labels[q]), fontsize=8)
            if q == 0 and labels is not None:
                ax.set_ylabel(str(labels[r]), fontsize=8, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title)
    return _finish(fig, title_inches=0.35 if title else 0.0)


def plot_schedules(schedules: Mapping[str, Any] | Sequence[Any] | Any):
    """Plot ᾱ_t and log-SNR_t = log(ᾱ_t / (1 − ᾱ_t)) against t for one or more noise schedules; return the Figure.

    ``schedules``: a dict ``{label: schedule}``, a list of schedules, or one schedule; a schedule is anything with
    an ``alpha_bar`` tensor of shape (T,) (labels default to its ``kind``).
    """
    if isinstance(schedules, Mapping):
        items = list(schedules.items())
    else:
        seq = list(schedules) if isinstance(schedules, (list, tuple)) else [schedules]
        items = [(_schedule_label(s), s) for s in seq]
    if not items:
        raise ValueError("plot_schedules needs at least one schedule, e.g. plot_schedules([NoiseSchedule('cosine')])")
    fig, axes = _new_figure(1, 2, figsize=(10, 3.4))
    ax_ab, ax_snr = axes[0]
    for k, (label, s) in enumerate(items):
        if not hasattr(s, "alpha_bar"):
            raise TypeError(f"{label!r}: expected a schedule with an `alpha_bar` tensor; got {type(s).__name__}")
        ab = torch.as_tensor(s.alpha_bar).detach().cpu().double().numpy()  # (T,)
        t = np.arange(len(ab))
        with np.errstate(divide="ignore"):
            log_snr = np.log(ab) - np.log1p(-ab)  # log SNR = log ᾱ − log(1 − ᾱ); −∞ where ᾱ = 0 (not drawn)
        # each schedule its own line style and markers, the markers staggered: curves that coincide stay visible
        style = dict(label=label, linestyle=_LINE_STYLES[k % len(_LINE_STYLES)], linewidth=1.6,
                     marker=_MARKERS[k % len(_MARKERS)], markersize=5,
                     markevery=(k * len(t) // 40, max(1, len(t) // 10)))  # (first marker, then every T/10 steps)
        ax_ab.plot(t, ab, **style)
        ax_snr.plot(t, np.where(np.isfinite(log_snr), log_snr, np.nan), **style)
    ax_ab.set(xlabel="diffusion step t", ylabel="ᾱ_t  (signal kept: √ᾱ_t)", title="ᾱ_t", ylim=(-0.02, 1.02))
    ax_snr.set(xlabel="diffusion step t", ylabel="log SNR_t", title="log-SNR  = log ᾱ/(1−ᾱ)")
    for ax in (ax_ab, ax_snr):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _finish(fig)


_LINE_STYLES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "v")


def _schedule_label(s: Any) -> str:
    label = str(getattr(s, "kind", type(s).__name__))
    if getattr(s, "zero_terminal_snr", False):
        label += " (zero terminal SNR)"
    return label


def plot_loss(history: Any, smooth: float = 0.9, log_y: bool | None = None, title: str | None = None):
    """Plot training curves; return the Figure.

    ``history`` may be a list of numbers (one per step), a dict ``{name: list of numbers}``, a dict with a
    ``"step"`` list next to the curves, a list of dicts such as ``[{"step": 0, "loss": 1.2}, ...]``, or a dict
    ``{name: {"step": [...], "loss": [...]}}`` whose curves each have their own steps (e.g. two training stages,
    the second continuing where the first stopped).
    Each curve is drawn faintly with an exponential moving average (``smooth`` in [0, 1); 0 = none) on top.
    ``log_y=None`` uses a log axis when every value is positive.
    """
    if not 0 <= smooth < 1:
        raise ValueError(f"smooth is the EMA factor and must lie in [0, 1); got {smooth!r}")
    curves = _curves_from_history(history)  # {name: (steps, values)}
    fig, axes = _new_figure(1, 1, figsize=(6, 3.4))
    ax = axes[0, 0]
    all_values = np.concatenate([v for _, v in curves.values()]) if curves else np.zeros(0)
    for name, (x, values) in curves.items():
        (line,) = ax.plot(x, values, alpha=0.3 if smooth > 0 else 1.0, label=None if smooth > 0 else name)
        if smooth > 0:
            ema, out = values[0], []
            for v in values:
                ema = smooth * ema + (1 - smooth) * v  # exponential moving average
                out.append(ema)
            ax.plot(x, out, color=line.get_color(), label=f"{name} (EMA {smooth})")
    if log_y is None:
        log_y = bool(len(all_values)) and bool(np.all(all_values[np.isfinite(all_values)] > 0))
    if log_y:
        ax.set_yscale("log")
    ax.set(xlabel="step", ylabel="loss", title=title or "training loss")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=8)
    return _finish(fig)


def _curves_from_history(history: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Normalise the accepted ``history`` layouts to ``{name: (steps, values)}`` (steps 0, 1, ... if not given)."""
    hint = ("pass a list of numbers, a dict {name: list}, a list of dicts like {'step': 0, 'loss': 1.2}, "
            "or a dict {name: {'step': [...], 'loss': [...]}}")

    def with_steps(steps, values):
        values = np.asarray(values, dtype=float)
        steps = np.asarray(steps, dtype=float) if steps is not None else None
        return (steps if steps is not None and len(steps) == len(values) else np.arange(len(values))), values

    if isinstance(history, Mapping):
        steps = history.get("step")
        curves = {}
        for k, v in history.items():
            if k == "step":
                continue
            if isinstance(v, Mapping):  # a curve with its own steps, e.g. one training stage
                if "loss" not in v:
                    raise TypeError(f"plot_loss: the curve {k!r} is a dict without a 'loss' list; {hint}")
                curves[k] = with_steps(v.get("step"), v["loss"])
            else:
                curves[k] = with_steps(steps, v)
        return curves
    history = list(history)
    if history and isinstance(history[0], Mapping):
        keys = [k for k in history[0] if k != "step" and isinstance(history[0][k], (int, float, np.floating))]
        steps = [h.get("step", i) for i, h in enumerate(history)]
        return {k: with_steps(steps, [h.get(k, np.nan) for h in history]) for k in keys}
    try:
        return {"loss": with_steps(None, [float(v) for v in history])}
    except (TypeError, ValueError) as err:
        raise TypeError(f"plot_loss could not read the history ({err}); {hint}") from None


# ----------------------------------------------------------------------------------------------------------------
# Widgets that leave a picture behind, and a slider over diffusion step × frame (ipywidgets)

SCRUBBER_MAX_PX = 400  # the scrubber's picture is shown at most this wide and high: slider and picture fit on screen
WIDGET_PLACEHOLDER = "(a widget: run the cell in Jupyter to use it; the picture above is its static copy)"


class WidgetWithStatic:
    """A live widget and a static picture of the same thing; Jupyter shows both, the picture first.

    A widget lives in the kernel: once the notebook is saved and reopened, or exported to HTML, its output shows
    nothing (or "model not found"). The picture is an ordinary image output, so it stays in the saved notebook.
    ``.widget`` and ``.static`` are the two parts: ``display(w.widget)`` shows the widget alone.
    """

    def __init__(self, widget: Any, static: Any):
        self.widget, self.static = widget, static

    def _ipython_display_(self):
        from IPython.display import display

        display(self.static)
        bundle = getattr(self.widget, "_repr_mimebundle_", lambda: None)()
        if not bundle:  # not an ipywidget: let IPython show it as it would
            display(self.widget)
            return
        # where the widget cannot be drawn (an HTML export, a plain-text viewer) say so, instead of its long repr
        display({**bundle, "text/plain": WIDGET_PLACEHOLDER}, raw=True)


def _trajectory_clips(xs: Any) -> np.ndarray:
    """A trajectory → uint8 ``(s, f, H, W, C)``: one (tiled) clip per diffusion step.

    ``xs`` is a list of clips or batches (one per step), or a tensor ``(s, c, f, h, w)`` or ``(s, b, c, f, h, w)``.
    """
    if isinstance(xs, (torch.Tensor, np.ndarray)):
        if xs.ndim not in (5, 6):
            raise ValueError(
                "a trajectory tensor must be (steps, c, f, h, w) or (steps, b, c, f, h, w); "
                f"got shape {tuple(xs.shape)}. "
                "Pass a list with one clip per step instead."
            )
        xs = list(xs)
    if len(xs) == 0:
        raise ValueError("the trajectory is empty; pass one clip (or batch) per diffusion step")
    steps = []
    for x in xs:
        clips = _as_clips(x)  # (n, f, h, w, C)
        steps.append(_grid(clips) if clips.shape[0] > 1 else clips[0])  # (f, H, W, C)
    if len({s.shape for s in steps}) > 1:
        shapes = sorted({s.shape for s in steps})
        raise ValueError(f"every step of the trajectory must have the same shape; got {shapes}")
    return np.stack(steps)  # (s, f, H, W, C)


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (where widgets can be drawn), False in a plain Python or IPython terminal."""
    try:
        from IPython import get_ipython  # optional: IPython is not a dependency of the package
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def _png(frame: np.ndarray, scale: int) -> bytes:
    frame = _enlarge(frame, scale)  # (H·s, W·s, C)
    img = Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame)
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def diffusion_scrubber(
    xs: Any,
    ts: Sequence[int] | torch.Tensor | None = None,
    static: bool = False,
    scale: int | None = None,
    max_rows: int = 8,
    frames: Sequence[int] | int | None = None,
):
    """Two sliders, diffusion step t and frame, over a trajectory of clips; return the widget (with a picture).

    ``xs``: one clip (or batch) per diffusion step (see ``_trajectory_clips``); ``ts``: the distinct diffusion step
    of each entry (default 0, 1, 2, ...). The t slider shows t itself, runs from the smallest t (the cleanest clip,
    where it starts) to the largest, and the picture is at most ``SCRUBBER_MAX_PX`` = 400 px on its longer side.

    In a notebook with ipywidgets it returns a ``WidgetWithStatic``: a strip of frame 0 at up to ``max_rows`` steps
    (which stays in the saved notebook), then the sliders. Without ipywidgets, outside a notebook, or with
    ``static=True`` it returns a filmstrip Figure instead: up to ``max_rows`` steps (rows) × ``frames`` (columns).
    """
    clips = _trajectory_clips(xs)  # (s, f, H, W, C)
    s, f, H, W = clips.shape[:4]
    if ts is None:
        ts = list(range(s))
    ts = [int(v) for v in (ts.tolist() if isinstance(ts, torch.Tensor) else ts)]
    if len(ts) != s:
        raise ValueError(f"ts needs one diffusion step per trajectory entry: {s} entries, got {len(ts)} values")
    if len(set(ts)) != s:
        raise ValueError(f"ts must name each diffusion step once (the slider selects by t); got {ts}")

    widgets = None
    if not static and _in_notebook():
        try:
            import ipywidgets as widgets  # optional (the notebooks extra); without it: a static filmstrip
        except ImportError:
            widgets = None
    if widgets is None:  # static fallback: a filmstrip of a few steps
        rows = _pick_frames(s, min(s, max_rows))  # up to max_rows evenly spaced steps
        strip = rearrange(clips[rows], "s f h w c -> s c f h w")  # uint8 (rows, C, f, H, W)
        return filmstrip(
            strip,
            labels=[f"t={ts[r]}" for r in rows],
            title="diffusion step (rows) × frame (columns)",
            frames=frames,
        )

    order = sorted(range(s), key=lambda i: ts[i])  # entry indices by t: the cleanest clip first
    picked = [order[k] for k in _pick_frames(s, min(s, max_rows))]  # up to max_rows steps for the picture
    picture = filmstrip(
        rearrange(clips[picked, 0], "s h w c -> 1 c s h w"),  # frame 0 at each picked step, as one row
        column_labels=[f"t={ts[i]}" for i in picked],
        title="frame 0 at a few diffusion steps (drag the sliders below to see every step and frame)",
    )

    if scale is None:  # the largest crisp (integer) enlargement that fits the bound
        scale = _auto_scale(H, W, target=SCRUBBER_MAX_PX, max_scale=8)
    scale = _check_scale(scale, H, W)
    shrink = min(1.0, SCRUBBER_MAX_PX / (max(H, W) * scale))  # an explicit large scale is shown smaller
    size = widgets.Layout(width=f"{round(W * scale * shrink)}px", height=f"{round(H * scale * shrink)}px")
    first = order[0]
    image = widgets.Image(value=_png(clips[first, 0], scale), format="png", layout=size)
    step = widgets.SelectionSlider(options=[ts[i] for i in order], value=ts[first], description="t",
                                   continuous_update=True)
    frame = widgets.IntSlider(value=0, min=0, max=f - 1, description="frame", continuous_update=True)
    label = widgets.Label(value=f"t = {ts[first]}, frame 0")

    def update(_change=None):
        image.value = _png(clips[ts.index(step.value), frame.value], scale)
        label.value = f"t = {step.value}, frame {frame.value}"

    step.observe(update, names="value")
    frame.observe(update, names="value")
    return WidgetWithStatic(widgets.VBox([widgets.HBox([step, frame]), label, image]), picture)
