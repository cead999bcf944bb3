"""Digits and Moving MNIST: where the digits come from, and how they bounce.

The module reads bottom-up:

1. **idx files** — LeCun's MNIST format, parsed and checked (a truncated file or a wrong checksum is refused
   with an error naming the file).
2. **download** — the four MNIST files from the public mirrors, tried in turn, verified, written atomically
   into ``datasets/cache/mnist/``; offline it fails fast and says what to do.
3. **synthetic digits** — an offline fallback: digits rendered from the DejaVu fonts matplotlib ships, with a
   random affine jitter and stroke width. Clearly labelled SYNTHETIC wherever it is used.
4. **load_digits** — tries, in order: a folder you name (argument or ``VDIFF_MNIST_DIR``), the cache (filled
   by a download when online), the synthetic fallback; prints which one it used.
5. **motion** — one digit's path under the two published rule sets:
   *deterministic* (Srivastava et al. 2015) and *stochastic* (Denton & Fergus 2018).
6. **rendering and captions** — digits pasted into frames (``max`` or sum-then-clip), plain-word captions.
7. **MovingMNIST** — a map-style dataset: clip ``i`` depends only on ``(seed, split, i)``.

Pixel convention: inside the toolkit videos are float32 in [-1, 1] (-1 = black background, 1 = ink); files that
leave it hold uint8 0..255 (``to_uint8`` / ``from_uint8``).
"""

from __future__ import annotations

import gzip
import hashlib
import math
import operator
import os
import struct
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from .config import REPO_DIR
from .utils import atomic_write_bytes

DIGIT_SPLITS = ("train", "test")  # the two halves of MNIST
SPLITS = ("train", "test", "eval", "holdout")  # Moving MNIST splits; all but train draw from test digits
SPLIT_IDS = {"train": 0, "test": 1, "eval": 2, "holdout": 3}  # mixed into each clip's random seed
RULES = ("deterministic", "stochastic")
EVAL_SEED = 0  # the fixed evaluation set is MovingMNIST(split="eval", seed=EVAL_SEED)


class MNISTFileError(ValueError):
    """An MNIST file that cannot be used: not idx, truncated, corrupt, or not matching its published checksum."""


class DownloadError(RuntimeError):
    """No mirror delivered a verified MNIST file (typically: no internet)."""


def _say(verbose: bool, msg: str) -> None:
    if verbose:
        print(f"[vdiff_edu.data] {msg}", flush=True)


# ---------------------------------------------------------------------------------------- 1. idx files ----

# The four MNIST files (without .gz), by digit split: (images, labels).
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
ALL_MNIST_FILES = MNIST_FILES["train"] + MNIST_FILES["test"]
# md5 of the decompressed payload (what we check), and of the .gz files as first published (also accepted).
# The same values are published by torchvision, the PyTorch examples, TensorFlow's tooling and others.
RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
GZ_MD5 = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
_GZIP_MAGIC = b"\x1f\x8b"


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse idx bytes (LeCun's format) into a read-only uint8 array.

    Layout: ``00 00 08 ndim`` (two zero bytes, type code 0x08 = unsigned byte, the number of dimensions),
    then ``ndim`` big-endian uint32 sizes, then the values row-major. MNIST images are ``(n, 28, 28)``
    (magic 2051 = 0x00000803), labels ``(n,)`` (magic 2049 = 0x00000801).
    """
    fix = "Delete it and run again to download it afresh, or point VDIFF_MNIST_DIR at the original MNIST files."
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise MNISTFileError(f"{name} is not an idx file: it should start with bytes 00 00 08 <ndim>, "
                             f"got {data[:4].hex(' ') or 'an empty file'}. {fix}")
    code, ndim = data[2], data[3]
    if code != 0x08:
        raise MNISTFileError(f"{name} has idx type code 0x{code:02x}; MNIST uses 0x08 (unsigned bytes). {fix}")
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise MNISTFileError(f"{name} is truncated: its header (ndim={ndim}) needs {header} bytes, "
                             f"the file holds {len(data)}. {fix}")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + math.prod(dims)
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says (corrupt)"
        raise MNISTFileError(f"{name} is {what}: its header promises shape {dims} = {expected:,} bytes, "
                             f"the file holds {len(data):,}. {fix}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_payload(path: str | os.PathLike) -> tuple[bytes, bytes]:
    """The decompressed bytes of an idx file (``.gz`` or raw) and the bytes as stored on disk."""
    path = Path(path)
    stored = path.read_bytes()
    if stored[:2] != _GZIP_MAGIC:
        return stored, stored
    try:
        return gzip.decompress(stored), stored
    except (EOFError, OSError, zlib.error) as e:
        raise MNISTFileError(f"{path} is a truncated or corrupt gzip file ({e}). Delete it and run again to "
                             "download it afresh, or point VDIFF_MNIST_DIR at the original MNIST files.") from e


def canonical_name(path: str | os.PathLike) -> str:
    """``.../t10k-images.idx3-ubyte.gz`` → ``t10k-images-idx3-ubyte`` (the key of RAW_MD5)."""
    name = Path(path).name
    name = name[:-3] if name.endswith(".gz") else name
    return name.replace(".idx", "-idx")


def verify_checksum(name: str, payload: bytes, stored: bytes | None = None, where: str | None = None) -> None:
    """Refuse a file whose decompressed md5 (or, for a ``.gz``, the published .gz md5) is not MNIST's.

    ``name`` is the canonical file name (see ``canonical_name``); files with other names are not checked.
    """
    key = canonical_name(name)
    if key not in RAW_MD5:
        return
    got = hashlib.md5(payload).hexdigest()
    if got == RAW_MD5[key] or (stored is not None and hashlib.md5(stored).hexdigest() == GZ_MD5[key]):
        return
    raise MNISTFileError(
        f"checksum mismatch for {where or name}: md5 of the decompressed payload is {got}, the published "
        f"MNIST {key} has {RAW_MD5[key]}. The file is corrupt or is not MNIST. Delete it and run again to "
        "download it afresh; for other idx data (e.g. Fashion-MNIST) pass load_digits(..., verify=False).")


_PARSED: dict[tuple, np.ndarray] = {}  # per-process cache: (path, size, mtime, verify) -> array


def read_idx(path: str | os.PathLike, verify: bool = True) -> np.ndarray:
    """Read and check one idx file (``.gz`` or raw); parsed once per process."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, verify)
    if key not in _PARSED:
        payload, stored = read_payload(path)
        if verify:
            verify_checksum(path.name, payload, stored, where=str(path))
        arr = parse_idx(payload, str(path))
        arr.flags.writeable = False
        _PARSED[key] = arr
    return _PARSED[key]


def read_mnist_pair(images_path: Path, labels_path: Path, verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, 28, 28)`` uint8 and labels ``(n,)`` int64 from an images file and its labels file."""
    images, labels = read_idx(images_path, verify), read_idx(labels_path, verify)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise MNISTFileError(f"{images_path} holds shape {images.shape}; MNIST images are (n, 28, 28).")
    if labels.ndim != 1 or len(labels) != len(images):
        raise MNISTFileError(f"{labels_path} holds shape {labels.shape}; expected ({len(images)},) labels "
                             f"to match the {len(images):,} images of {images_path}.")
    if labels.size and labels.max() > 9:
        raise MNISTFileError(f"{labels_path} holds a label {int(labels.max())}; MNIST labels are 0..9.")
    return images, labels.astype(np.int64)


def find_mnist_files(folder: str | os.PathLike) -> dict[str, tuple[Path, Path]]:
    """The MNIST (images, labels) files per split found in ``folder`` — looking in the folder itself and in the
    ``MNIST/raw`` layout torchvision leaves behind; ``.gz`` or raw, ``-idx`` or ``.idx`` spellings."""
    folder = Path(folder)
    found: dict[str, tuple[Path, Path]] = {}
    for split, stems in MNIST_FILES.items():
        for d in (folder, folder / "MNIST" / "raw", folder / "raw", folder / "mnist"):
            paths = [_first_existing(d, stem) for stem in stems]
            if paths[0] and paths[1]:
                found[split] = (paths[0], paths[1])
                break
            if paths[0] or paths[1]:
                have, missing = (paths[0], stems[1]) if paths[0] else (paths[1], stems[0])
                raise MNISTFileError(f"{have} is there but its partner {missing}[.gz] is missing from {d}; "
                                     "copy both files of the split into the folder.")
    return found


def _first_existing(folder: Path, stem: str) -> Path | None:
    dotted = stem.replace("-idx", ".idx")  # t10k-images.idx3-ubyte, as some copies spell it
    for name in (f"{stem}.gz", stem, f"{dotted}.gz", dotted):
        if (folder / name).is_file():
            return folder / name
    return None


# ------------------------------------------------------------------------------------------ 2. download ----

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",  # PyTorch's mirror (torchvision tries it first)
    "https://storage.googleapis.com/cvdf-datasets/mnist/",  # TensorFlow's mirror
    "http://yann.lecun.com/exdb/mnist/",  # the original site (often refuses scripted downloads)
)
DOWNLOAD_TIMEOUT_S = 5.0  # per network operation: offline, the download fails in seconds, not minutes
_DOWNLOAD_FAILED: dict[str, str] = {}  # cache dir -> the failure, so one process tries the network only once
_TOLD_SYNTHETIC: set[str] = set()  # cache dirs whose fallback to synthetic digits was explained (once per process)


def mnist_cache_dir() -> Path:
    """Where downloaded MNIST files live: ``$VDIFF_CACHE_DIR/mnist`` or ``datasets/cache/mnist`` (git-ignored)."""
    return Path(os.environ.get("VDIFF_CACHE_DIR") or REPO_DIR / "datasets" / "cache") / "mnist"


def _fetch(url: str, timeout: float) -> bytes:
    """GET ``url`` (http, https or file) and return its bytes. Tests replace this function; nothing else
    in the module touches the network."""
    request = urllib.request.Request(url, headers={"User-Agent": "vdiff-edu (Moving MNIST course)"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def offline_help(dest: Path) -> str:
    """What to do without MNIST, in one line (printed once with the fallback, and ending every download error)."""
    return (f"For real MNIST set VDIFF_MNIST_DIR to a folder of its idx files (the test split is enough) or copy "
            f"them into {dest}; VDIFF_OFFLINE=1 skips the download.")


def download_mnist(dest: str | os.PathLike | None = None, mirrors: Sequence[str] = MIRRORS,
                   timeout: float = DOWNLOAD_TIMEOUT_S, verbose: bool = True) -> Path:
    """Download the four MNIST files into ``dest`` (default ``mnist_cache_dir()``), verified, atomically.

    Files already there and intact are kept. For each missing file the mirrors are tried in turn; a mirror's
    file is accepted only if its decompressed payload has MNIST's published md5 (the .gz md5 is accepted too).
    If every mirror fails for a file, ``DownloadError`` says what was tried and what to do.
    """
    dest = Path(dest) if dest is not None else mnist_cache_dir()
    for stem in ALL_MNIST_FILES:
        have = _first_existing(dest, stem)
        if have is not None:
            read_idx(have)  # refuses a corrupt or wrong file, naming it
            continue
        tried = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + f"/{stem}.gz"
            try:
                blob = _fetch(url, timeout)
            except Exception as e:  # URLError, timeouts, HTTP errors, refused connections
                tried.append(f"{url}: {type(e).__name__}: {e}")
                continue
            try:
                payload = gzip.decompress(blob) if blob[:2] == _GZIP_MAGIC else blob
                verify_checksum(stem, payload, blob, where=url)
                parse_idx(payload, url)
            except (MNISTFileError, EOFError, OSError, zlib.error) as e:
                tried.append(f"{url}: {e}")
                continue
            atomic_write_bytes(dest / (f"{stem}.gz" if blob[:2] == _GZIP_MAGIC else stem), blob)
            _say(verbose, f"downloaded {stem} ({len(payload):,} bytes, md5 verified) from {mirror}")
            break
        else:
            raise DownloadError(f"could not download {stem}.gz from any MNIST mirror:\n  "
                                + "\n  ".join(tried) + f"\n{offline_help(dest)}")
    return dest


# -------------------------------------------------------------------------------- 3. synthetic digits ----

SYNTHETIC_SIZES = {"train": 5000, "test": 1000}  # ~0.25 ms per digit to render
_SYNTH_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
                "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSansMono.ttf",
                "DejaVuSansMono-Bold.ttf")
_FONT_CACHE: list = []


def _fonts() -> list:
    """The DejaVu fonts matplotlib ships (or Pillow's built-in font if they are missing), loaded once."""
    if not _FONT_CACHE:
        from PIL import ImageFont

        try:
            import matplotlib

            ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
            _FONT_CACHE.extend(ImageFont.truetype(str(ttf / n), 34) for n in _SYNTH_FONTS if (ttf / n).is_file())
        except ImportError:
            pass
        if not _FONT_CACHE:
            _FONT_CACHE.append(ImageFont.load_default(size=34))
    return _FONT_CACHE


def render_synthetic_digit(label: int, rng: np.random.Generator) -> np.ndarray:
    """One MNIST-like digit ``(28, 28)`` uint8: a font glyph, a random stroke width, a random affine jitter
    (rotation ±15°, shear ±0.3, scale 0.85–1.15), then MNIST's own normalisation: the ink fitted into a
    20×20 box and centred by its centre of mass in a 28×28 frame (LeCun et al. 1998)."""
    from PIL import Image, ImageDraw

    fonts = _fonts()
    c = 56  # working canvas, px
    img = Image.new("L", (c, c), 0)
    font = fonts[int(rng.integers(len(fonts)))]
    stroke = int(rng.integers(0, 4))  # 0..3 px of extra stroke
    ImageDraw.Draw(img).text((c / 2, c / 2), str(label), fill=255, font=font, anchor="mm",
                             stroke_width=stroke, stroke_fill=255)
    # affine jitter: A = scale · R(angle) · Shear(s); PIL wants the inverse map, output → input
    angle, shear, scale = np.deg2rad(rng.uniform(-15, 15)), rng.uniform(-0.3, 0.3), rng.uniform(0.85, 1.15)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    inv = np.linalg.inv(scale * rot @ np.array([[1.0, shear], [0.0, 1.0]]))
    centre = np.array([c / 2, c / 2])
    off = centre - inv @ centre
    img = img.transform((c, c), Image.Transform.AFFINE, (inv[0, 0], inv[0, 1], off[0], inv[1, 0], inv[1, 1], off[1]),
                        resample=Image.Resampling.BILINEAR)
    ink = np.asarray(img)
    ys, xs = np.nonzero(ink)
    box = ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]  # (bh, bw) tight box around the ink
    k = 20 / max(box.shape)  # fit into 20×20, keeping the aspect ratio
    small = np.asarray(Image.fromarray(box).resize((max(1, round(box.shape[1] * k)), max(1, round(box.shape[0] * k))),
                                                   Image.Resampling.BILINEAR), dtype=np.float64)
    yy, xx = np.indices(small.shape)
    cy, cx = (yy * small).sum() / small.sum(), (xx * small).sum() / small.sum()  # centre of mass
    oy = int(np.clip(round(14 - cy), 0, 28 - small.shape[0]))
    ox = int(np.clip(round(14 - cx), 0, 28 - small.shape[1]))
    out = np.zeros((28, 28), np.uint8)
    out[oy:oy + small.shape[0], ox:ox + small.shape[1]] = np.clip(np.rint(small), 0, 255).astype(np.uint8)
    return out


_SYNTH_CACHE: dict[tuple, "DigitSet"] = {}


def synthetic_digits(split: str = "train", n: int | None = None, seed: int = 0) -> "DigitSet":
    """SYNTHETIC MNIST-like digits, balanced over 0..9, deterministic per ``(seed, split)``; train and test are
    rendered from different random streams, so they never share an image. Cached per process."""
    _check_choice("split", split, DIGIT_SPLITS)
    n = SYNTHETIC_SIZES[split] if n is None else n
    _check_int("n", n, 10, None, "ask for at least one digit of each class")
    key = (split, n, seed)
    if key not in _SYNTH_CACHE:
        rng = np.random.default_rng([seed, 7, DIGIT_SPLITS.index(split)])
        labels = rng.permutation(np.arange(n) % 10).astype(np.int64)
        images = np.stack([render_synthetic_digit(int(d), rng) for d in labels])  # (n, 28, 28)
        images.flags.writeable = labels.flags.writeable = False
        source = (f"synthetic: SYNTHETIC digits rendered from DejaVu fonts with random affine jitter (not MNIST), "
                  f"{n:,} {split} digits, seed {seed}")
        _SYNTH_CACHE[key] = DigitSet(images, labels, source)
    return _SYNTH_CACHE[key]


# ------------------------------------------------------------------------------------- 4. load_digits ----


@dataclass(frozen=True, eq=False)
class DigitSet:
    """A set of 28×28 digits and where they came from."""

    images: np.ndarray  # uint8 (n, 28, 28), 0 = black background, 255 = ink; read-only
    labels: np.ndarray  # int64 (n,), 0..9
    source: str  # "folder: ...", "cache: ..." or "synthetic: ..." — say it in every printout and figure

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def origin(self) -> str:
        """``"folder"``, ``"cache"`` or ``"synthetic"``."""
        return self.source.split(":", 1)[0]

    @property
    def synthetic(self) -> bool:
        return self.origin == "synthetic"


CARVE_TRAIN_FRACTION = 0.8  # when only one MNIST split is present, this share of it becomes "train"


def _digits_from_files(files: dict[str, tuple[Path, Path]], split: str, where: str, verify: bool) -> DigitSet:
    """The digits of ``split``; when only one split is present, carve train and test disjointly from it."""
    if len(files) == 2:
        images, labels = read_mnist_pair(*files[split], verify=verify)
        return DigitSet(images, labels, f"{where}: real MNIST {split} split, {len(labels):,} digits from "
                                        f"{files[split][0].parent}")
    (have,) = files  # the one split that is there
    images, labels = read_mnist_pair(*files[have], verify=verify)
    order = np.random.default_rng(12345).permutation(len(labels))  # a fixed shuffle, the same every run
    n_train = int(round(CARVE_TRAIN_FRACTION * len(labels)))
    part = np.sort(order[:n_train] if split == "train" else order[n_train:])
    images, labels = images[part], labels[part]
    images.flags.writeable = False
    missing = "train" if have == "test" else "test"
    return DigitSet(images, labels, f"{where}: real MNIST, {len(labels):,} {split} digits carved from the {have} "
                                    f"split of {files[have][0].parent} (no {missing} files there; train gets "
                                    f"{CARVE_TRAIN_FRACTION:.0%}, test the rest, disjoint)")


def load_digits(split: str = "train", root: str | os.PathLike | None = None, download: bool = True, *,
                verify: bool = True, allow_synthetic: bool = True, synthetic: bool = False,
                verbose: bool = True) -> DigitSet:
    """The 28×28 digits of MNIST's ``split`` (``"train"`` or ``"test"``), from the first source that has them:

    1. the folder ``root``, else ``$VDIFF_MNIST_DIR`` (idx ``.gz`` or raw, or torchvision's ``MNIST/raw``);
       with only the test files there, train and test are carved from them disjointly (80/20);
    2. the cache ``datasets/cache/mnist/``, filled by ``download_mnist`` unless ``download=False`` or
       ``VDIFF_OFFLINE=1``;
    3. ``synthetic_digits`` (when ``allow_synthetic``; ``synthetic=True`` goes straight there).

    Prints which source it used; ``DigitSet.source`` says it too. Files are parsed once per process.
    ``verify=False`` accepts idx files that are not the published MNIST (e.g. Fashion-MNIST).
    """
    _check_choice("split", split, DIGIT_SPLITS)
    if synthetic:
        digits = synthetic_digits(split)
        _say(verbose, f"{split} digits: {digits.source}")
        return digits

    # 1. a folder the user names
    folder = root if root is not None else os.environ.get("VDIFF_MNIST_DIR") or None
    if folder is not None:
        named = "root" if root is not None else "VDIFF_MNIST_DIR"
        folder = Path(folder).expanduser()
        files = find_mnist_files(folder) if folder.is_dir() else {}
        if not files:
            raise FileNotFoundError(
                f"{named}={str(folder)!r} holds no MNIST idx files: looked for "
                f"{MNIST_FILES['test'][0]}[.gz] and {MNIST_FILES['train'][0]}[.gz] (with their labels) in it and "
                f"in its MNIST/raw. Point {named} at the folder holding them, or unset it to use the cache.")
        digits = _digits_from_files(files, split, "folder", verify)
        _say(verbose, f"{split} digits: {digits.source} ({named})")
        return digits

    # 2. the cache, filled by a download when online
    dest = mnist_cache_dir()
    files = find_mnist_files(dest) if dest.is_dir() else {}
    offline = not download or os.environ.get("VDIFF_OFFLINE") == "1"
    problem = None
    if len(files) < 2:
        if offline:
            problem = (f"MNIST is not in the cache and downloading is off "
                       f"({'download=False' if not download else 'VDIFF_OFFLINE=1'})")
        elif str(dest) in _DOWNLOAD_FAILED:  # tried and failed earlier in this process: don't wait again
            problem = _DOWNLOAD_FAILED[str(dest)]
        else:
            try:
                download_mnist(dest, verbose=verbose)
                files = find_mnist_files(dest)
            except DownloadError as e:  # remember its first line only: "could not download ... from any mirror"
                problem = _DOWNLOAD_FAILED.setdefault(str(dest), str(e).splitlines()[0].rstrip(":"))
    if files:
        digits = _digits_from_files(files, split, "cache", verify)
        _say(verbose, f"{split} digits: {digits.source}")
        return digits

    # 3. the synthetic fallback
    if not allow_synthetic:
        raise DownloadError(f"no MNIST digits found: {problem}. {offline_help(dest)}")
    if verbose and str(dest) not in _TOLD_SYNTHETIC:  # why, and what to do: once per process, in two lines
        _TOLD_SYNTHETIC.add(str(dest))
        _say(verbose, f"{problem}: using SYNTHETIC digits.\n{offline_help(dest)}")
    digits = synthetic_digits(split)
    _say(verbose, f"{split} digits: {digits.source}")
    return digits


# ------------------------------------------------------------------------------------ pixel conventions ----


def to_uint8(video: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """[-1, 1] floats → uint8 0..255 (0 = black background, 255 = ink), same shape and kind (tensor/array).

    Values outside [-1, 1] are clipped. Files that leave the toolkit hold ``(n, f, h, w)``: drop the channel
    axis first, ``to_uint8(video[:, 0])``."""
    if isinstance(video, torch.Tensor):
        return ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    x = np.asarray(video, dtype=np.float32)
    return np.rint((np.clip(x, -1, 1) + 1) * 127.5).astype(np.uint8)


def from_uint8(frames: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """uint8 0..255 → float32 in [-1, 1], same shape and kind; the inverse of ``to_uint8``."""
    if frames.dtype not in (torch.uint8, np.uint8):
        raise TypeError(f"from_uint8 expects uint8 frames (0..255), got dtype {frames.dtype}; "
                        "for floats already in [-1, 1] there is nothing to convert.")
    if isinstance(frames, torch.Tensor):
        return frames.float() / 127.5 - 1
    return frames.astype(np.float32) / np.float32(127.5) - np.float32(1)


# ------------------------------------------------------------------------------------------ 5. motion ----

DEFAULT_SPEED_64 = 3.6  # px/frame at 64×64: Srivastava's step of 0.1 × (64 - 28)
# Stochastic rule (SVG's integer speeds at 64 px: inward 1..4, cross -4..4), relative to the nominal speed:
STOCHASTIC_INWARD = (1 / 3.6, 4 / 3.6)  # new speed away from the wall, × speed
STOCHASTIC_CROSS = 4 / 3.6  # new speed along the wall in [-this, this] × speed

# Motion words for captions, from a digit's dominant direction over the clip: the angle of
# (mean |v_x|, mean |v_y|) falls in [0°, 30°) → horizontal, (60°, 90°] → vertical, else diagonal.
# Bounces flip signs but keep the axis, so the deterministic rule's motion never changes within a clip.
MOTIONS = ("horizontal", "vertical", "diagonal")
MOTION_PHRASES = {"horizontal": "moves left and right", "vertical": "moves up and down",
                  "diagonal": "moves diagonally"}


def default_speed(image_size: int) -> float:
    """3.6 px/frame at 64×64, scaled with the frame: 1.8 px/frame at 32×32."""
    return DEFAULT_SPEED_64 * image_size / 64


def simulate_trajectory(rng: np.random.Generator, num_frames: int, canvas: float, speed: float,
                        rule: str = "deterministic") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One digit's path: ``positions (f, 2)`` top-left (y, x) in px, ``velocities (f, 2)``, ``bounces (f,)``.

    ``canvas = image_size - digit_size``: the top-left corner lives in [0, canvas]². ``velocities[f]`` is the
    velocity after any bounce at frame f, so ``positions[f+1] = clip(positions[f] + velocities[f])``.
    Random draws, in this order: start (y, x) ~ U(0, canvas)²; direction θ ~ U(0, 2π) at ``speed`` px/frame;
    then (stochastic rule only) two inward and two cross speeds at each bounce.
    """
    # 1. start uniform in the frame, a random direction at a fixed speed (Srivastava et al. 2015)
    pos = rng.uniform(0.0, canvas, size=2)  # (2,) = (y, x)
    theta = rng.uniform(0.0, 2 * np.pi)
    vel = speed * np.array([np.sin(theta), np.cos(theta)])  # (2,), |v| = speed
    positions, velocities = np.empty((num_frames, 2)), np.empty((num_frames, 2))
    bounces = np.zeros(num_frames, dtype=bool)
    positions[0], velocities[0] = pos, vel
    for f in range(1, num_frames):
        # 2. step along the velocity
        pos = pos + vel
        low, high = pos < 0, pos > canvas
        hit = low | high
        if hit.any():
            # 3. stop at the wall (Srivastava's generator clamps there) ...
            pos = np.clip(pos, 0.0, canvas)
            inward = np.where(low, 1.0, -1.0)  # the sign that points back into the frame
            if rule == "deterministic":
                # 4a. ... and reflect: the velocity component normal to the wall changes sign
                vel = np.where(hit, inward * np.abs(vel), vel)
            else:
                # 4b. ... and draw a new random inward speed and a new cross speed (Denton & Fergus 2018)
                new_inward = inward * rng.uniform(*STOCHASTIC_INWARD, size=2) * speed
                new_cross = rng.uniform(-STOCHASTIC_CROSS, STOCHASTIC_CROSS, size=2) * speed
                vel = np.where(hit, new_inward, new_cross)  # a corner hit sends both axes inward
            bounces[f] = True
        positions[f], velocities[f] = pos, vel
    return positions, velocities, bounces


def motion_of(velocities: np.ndarray) -> str:
    """The motion word (``MOTIONS``) of one digit's ``velocities (f, 2)``: its dominant direction."""
    mean_abs = np.abs(np.asarray(velocities, dtype=np.float64)).mean(axis=0)  # (2,) = (|v_y|, |v_x|)
    angle = math.degrees(math.atan2(mean_abs[0], mean_abs[1]))  # 0° = horizontal, 90° = vertical
    return "horizontal" if angle < 30 else "vertical" if angle > 60 else "diagonal"


def make_caption(labels: Iterable[int], motions: Iterable[str]) -> str:
    """``[3, 7], ["horizontal", "vertical"]`` → "the digit 3 moves left and right and the digit 7 moves up
    and down"; three digits are joined "A, B and C"."""
    parts = [f"the digit {int(d)} {MOTION_PHRASES[m]}" for d, m in zip(labels, motions)]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


# ----------------------------------------------------------------------------------- 6. rendering ----


def resize_digit(image: np.ndarray, size: int) -> np.ndarray:
    """A uint8 digit ``(28, 28)`` → float32 ``(size, size)`` in [0, 1], antialiased (Pillow's bilinear filter
    widens its support when shrinking)."""
    if image.shape == (size, size):
        return image.astype(np.float32) / 255
    from PIL import Image

    small = Image.fromarray(np.ascontiguousarray(image)).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.float32) / 255


def render_clip(digits: Sequence[np.ndarray], positions: np.ndarray, image_size: int,
                rule: str = "deterministic") -> np.ndarray:
    """Paste each digit ``(d, d)`` in [0, 1] at its rounded top-left ``positions (f, num_digits, 2)``.

    Overlaps: ``max`` for the deterministic rule (Srivastava et al.), sum then clip to 1 for the stochastic
    rule (Denton & Fergus). Returns frames ``(f, h, w)`` float32 in [0, 1]."""
    num_frames = positions.shape[0]
    frames = np.zeros((num_frames, image_size, image_size), dtype=np.float32)  # (f, h, w)
    corners = np.rint(positions).astype(np.int64)  # (f, num_digits, 2)
    for k, digit in enumerate(digits):
        d = digit.shape[0]
        for f in range(num_frames):
            y, x = corners[f, k]
            patch = frames[f, y:y + d, x:x + d]  # (d, d) view into the frame
            if rule == "deterministic":
                np.maximum(patch, digit, out=patch)
            else:
                patch += digit
    if rule != "deterministic":
        np.clip(frames, 0.0, 1.0, out=frames)
    return frames


# ---------------------------------------------------------------------------------- 7. MovingMNIST ----


def _check_int(name: str, value, lo: int, hi: int | None = None, hint: str = "") -> None:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= lo
    if not ok or (hi is not None and value > hi):
        rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be an integer {rng}; got {value!r}. {hint}".rstrip())


def _check_choice(name: str, value, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}; got {value!r}.")


class MovingMNIST(Dataset):
    """Moving MNIST clips, generated on the fly; clip ``i`` depends only on ``(seed, split, i)``: digit ``k`` of
    it draws every random number from ``numpy.random.default_rng([seed, SPLIT_IDS[split], i, k])``.

    ``ds[i]`` is a dict:
        video       float32 (1, f, h, w) in [-1, 1]   -1 = background
        labels      int64 (num_digits,)              the digits, 0..9
        motions     int64 (num_digits,)              index into MOTIONS (horizontal, vertical, diagonal)
        caption     str                              "the digit 3 moves left and right and the digit 7 ..."
        positions   float32 (f, num_digits, 2)       top-left corner (y, x) in px; rendered at its rounding
        velocities  float32 (f, num_digits, 2)       px/frame after any bounce at that frame
        bounces     bool (f, num_digits)             the digit hit a wall arriving at that frame
        digit_ids   int64 (num_digits,)              which image of ``self.digits`` each digit is
        index       int                              i

    Splits: ``train`` draws from MNIST's train digits; ``test``, ``eval`` (the fixed evaluation set, see
    ``eval_set``) and ``holdout`` from its test digits, so train never shares a digit image with them.
    ``holdout`` is a set of ``(digit, motion)`` pairs, e.g. ``{(3, "vertical")}``: no train clip holds such a
    digit, and ``split="holdout"`` gives clips made only of them.
    """

    def __init__(self, split: str = "train", num_frames: int = 20, image_size: int = 64, num_digits: int = 2,
                 rule: str = "deterministic", seed: int = 0, length: int = 10_000, digit_size: int = 28,
                 speed: float | None = None, mnist_dir: str | os.PathLike | None = None,
                 holdout: Iterable[tuple[int, str]] | None = None, download: bool = True,
                 digits: DigitSet | None = None, verbose: bool = True):
        # 1. check every parameter, naming it, its value and the valid range
        _check_choice("split", split, SPLITS)
        _check_choice("rule", rule, RULES)
        _check_int("num_frames", num_frames, 1, 1000, "a clip needs at least one frame")
        _check_int("num_digits", num_digits, 1, 3, "Moving MNIST clips hold one to three digits")
        _check_int("digit_size", digit_size, 4, 256, "MNIST digits are 28 px; 20 suits 32×32 frames")
        _check_int("image_size", image_size, 1, 1024)
        if image_size <= digit_size:
            raise ValueError(f"image_size={image_size} is not larger than digit_size={digit_size}: a digit must fit "
                             f"in the frame with room to move; use image_size >= {digit_size + 1} or a smaller "
                             f"digit_size (e.g. image_size=32, digit_size=20).")
        _check_int("seed", seed, 0, None, "seeds are non-negative integers")
        _check_int("length", length, 1, None, "the number of clips in the dataset")
        if speed is None:
            speed = default_speed(image_size)
        if not isinstance(speed, (int, float)) or isinstance(speed, bool) or not 0 < speed <= image_size:
            raise ValueError(f"speed must be a number in (0, image_size={image_size}] px/frame; got {speed!r}. "
                             f"None picks {default_speed(image_size):.2f} (3.6 px/frame at 64×64, scaled).")
        self.holdout = self._check_holdout(holdout)
        if split == "holdout" and not self.holdout:
            raise ValueError("split='holdout' needs holdout=...: a non-empty set of (digit, motion) pairs, "
                             "e.g. holdout={(3, 'vertical')}.")

        self.split, self.num_frames, self.image_size, self.num_digits = split, num_frames, image_size, num_digits
        self.rule, self.seed, self.length, self.digit_size = rule, seed, length, digit_size
        self.speed = float(speed)
        self.canvas = float(image_size - digit_size)  # the top-left corner lives in [0, canvas]²

        # 2. the digits: train from MNIST's train split, every other split from its test split
        digit_split = "train" if split == "train" else "test"
        self.digits = digits if digits is not None else load_digits(digit_split, mnist_dir, download, verbose=verbose)
        if len(self.digits) == 0:
            raise ValueError("digits is empty; pass a DigitSet with at least one image.")
        self.source = self.digits.source
        self._by_label = {d: np.flatnonzero(self.digits.labels == d) for d in range(10)}
        if split == "holdout":
            self._targets = sorted(self.holdout)
            missing = sorted({d for d, _ in self._targets if len(self._by_label[d]) == 0})
            if missing:
                raise ValueError(f"holdout digits {missing} do not occur in the {digit_split} digits ({self.source}).")

    @staticmethod
    def _check_holdout(holdout) -> frozenset:
        pairs = frozenset()
        for item in holdout or ():
            try:
                digit, motion = item
            except (TypeError, ValueError):
                raise ValueError(f"holdout must hold (digit, motion) pairs such as (3, 'vertical'); "
                                 f"got {item!r}.") from None
            _check_int("holdout digit", digit, 0, 9)
            _check_choice("holdout motion", motion, MOTIONS)
            pairs |= {(int(digit), motion)}
        if len(pairs) == 10 * len(MOTIONS):
            raise ValueError("holdout holds all 30 (digit, motion) pairs: nothing would be left to train on.")
        return pairs

    @classmethod
    def eval_set(cls, length: int = 512, **kwargs) -> "MovingMNIST":
        """The fixed evaluation set: test digits, ``seed=EVAL_SEED``; pass the same sizes/rule as training."""
        return cls(split="eval", seed=EVAL_SEED, length=length, **kwargs)

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return (f"MovingMNIST(split={self.split!r}, rule={self.rule!r}, {self.length:,} clips of "
                f"{self.num_frames}×{self.image_size}×{self.image_size}, {self.num_digits} digit(s) of "
                f"{self.digit_size} px at {self.speed:.2f} px/frame, seed={self.seed}"
                + (f", holdout={sorted(self.holdout)}" if self.holdout else "") + f"; digits: {self.source})")

    def _sample_digit(self, rng: np.random.Generator) -> tuple[int, str, np.ndarray, np.ndarray, np.ndarray]:
        """Draw one digit image and its path, rejecting (digit, motion) pairs the split must not hold."""
        for _ in range(1000):
            if self.split == "holdout":
                label, want = self._targets[int(rng.integers(len(self._targets)))]
                pool = self._by_label[label]
                k = int(pool[rng.integers(len(pool))])
            else:
                k, want = int(rng.integers(len(self.digits))), None
            pos, vel, bounces = simulate_trajectory(rng, self.num_frames, self.canvas, self.speed, self.rule)
            motion = motion_of(vel)
            label = int(self.digits.labels[k])
            if want is not None and motion != want:
                continue
            if self.split == "train" and (label, motion) in self.holdout:
                continue
            return k, motion, pos, vel, bounces
        raise RuntimeError(f"could not draw a digit allowed in split {self.split!r} after 1000 tries "
                           f"(holdout={sorted(self.holdout)}); hold out fewer pairs.")

    def __getitem__(self, index: int) -> dict:
        i = operator.index(index)
        if i < 0:
            i += self.length
        if not 0 <= i < self.length:
            raise IndexError(f"clip index {index} is out of range for a MovingMNIST of length {self.length}.")
        # every random draw of digit k in clip i comes from its own generator, seeded by (seed, split, i, k):
        # the clip depends on nothing else, and each digit's draws are independent of the others'
        draws = [self._sample_digit(np.random.default_rng([self.seed, SPLIT_IDS[self.split], i, k]))
                 for k in range(self.num_digits)]
        ids = [k for k, *_ in draws]
        labels = [int(self.digits.labels[k]) for k in ids]
        motions = [m for _, m, *_ in draws]
        positions = np.stack([p for *_, p, _, _ in draws], axis=1)  # (f, num_digits, 2)
        velocities = np.stack([v for *_, v, _ in draws], axis=1)  # (f, num_digits, 2)
        bounces = np.stack([b for *_, b in draws], axis=1)  # (f, num_digits)
        pixels = [resize_digit(self.digits.images[k], self.digit_size) for k in ids]  # num_digits × (d, d)
        frames = render_clip(pixels, positions, self.image_size, self.rule)  # (f, h, w) in [0, 1]
        video = torch.from_numpy(frames * 2 - 1).unsqueeze(0)  # (1, f, h, w) in [-1, 1]
        return {
            "video": video,
            "labels": torch.tensor(labels, dtype=torch.int64),
            "motions": torch.tensor([MOTIONS.index(m) for m in motions], dtype=torch.int64),
            "caption": make_caption(labels, motions),
            "positions": torch.from_numpy(positions.astype(np.float32)),
            "velocities": torch.from_numpy(velocities.astype(np.float32)),
            "bounces": torch.from_numpy(bounces),
            "digit_ids": torch.tensor(ids, dtype=torch.int64),
            "index": i,
        }

    def batch(self, indices: Iterable[int]) -> dict:
        """Clips ``indices`` collated exactly as a DataLoader would: ``video (b, 1, f, h, w)``, captions a list."""
        return default_collate([self[i] for i in indices])


def make_clips(ds: MovingMNIST, n: int, start: int = 0) -> torch.Tensor:
    """The videos of clips ``start .. start + n - 1`` stacked: ``(n, 1, f, h, w)`` float32 in [-1, 1]."""
    _check_int("n", n, 1, None)
    if start < 0 or start + n > len(ds):
        raise ValueError(f"clips {start}..{start + n - 1} do not fit a dataset of length {len(ds)}; "
                         "lower n or start, or build the dataset with a larger length.")
    return torch.stack([ds[i]["video"] for i in range(start, start + n)])  # (n, 1, f, h, w)
