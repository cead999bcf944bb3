"""Where the digits come from: MNIST's idx files, a verified download cache, or synthetic digits.

The module reads bottom-up:

1. **DigitSet** — 28×28 uint8 digits, their labels, and a sentence saying where they came from.
2. **idx files** — LeCun's MNIST format, parsed and checked (a truncated file or a wrong checksum is refused
   with an error naming the file).
3. **download** — the four MNIST files from the public mirrors, tried in turn, verified, written atomically
   into ``datasets/cache/mnist/``; offline it fails fast and says what to do.
4. **synthetic digits** — an offline fallback: digits rendered from the DejaVu fonts matplotlib ships, with a
   random affine jitter and stroke width. Clearly labelled SYNTHETIC wherever it is used.
5. **load_digits** — tries, in order: a folder you name (argument or ``VDIFF_MNIST_DIR``), the cache (filled
   by a download when online), the synthetic fallback; prints which one it used. With only one MNIST split
   in a folder, train and test are carved from it disjointly.

How the digits move and become clips is ``moving_mnist.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .config import REPO_DIR
from .utils import atomic_write_bytes, check_choice, check_int

DIGIT_SPLITS = ("train", "test")  # the two halves of MNIST


class MNISTFileError(ValueError):
    """An MNIST file that cannot be used: not idx, truncated, corrupt, or not matching its published checksum."""


class DownloadError(RuntimeError):
    """No mirror delivered a verified MNIST file (typically: no internet)."""


def _say(verbose: bool, msg: str) -> None:
    if verbose:
        print(f"[vdiff_edu.digits] {msg}", flush=True)


# ------------------------------------------------------------------------------------------ 1. DigitSet ----


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


# ---------------------------------------------------------------------------------------- 2. idx files ----

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


def what_to_do_with(name: str) -> str:
    """The advice for a damaged idx file, by where it is: only a file in the toolkit's own cache may be deleted."""
    if name.startswith(("http://", "https://")):
        return "The mirror sent a damaged file; the next mirror is tried."
    try:
        in_cache = Path(name).resolve().is_relative_to(mnist_cache_dir().resolve())
    except (OSError, ValueError):
        in_cache = False
    if in_cache:
        return "It is in the toolkit's download cache: delete it and run again to download it afresh."
    return ("It is in your own folder, which vdiff_edu never changes: replace it with the original MNIST file, or "
            "point VDIFF_MNIST_DIR at a folder that holds them.")


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse idx bytes (LeCun's format) into a read-only uint8 array.

    Layout: ``00 00 08 ndim`` (two zero bytes, type code 0x08 = unsigned byte, the number of dimensions),
    then ``ndim`` big-endian uint32 sizes, then the values row-major. MNIST images are ``(n, 28, 28)``
    (magic 2051 = 0x00000803), labels ``(n,)`` (magic 2049 = 0x00000801).
    """
    fix = what_to_do_with(name)
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
        raise MNISTFileError(f"{path} is a truncated or corrupt gzip file ({e}). {what_to_do_with(str(path))}") from e


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
        f"MNIST {key} has {RAW_MD5[key]}. The file is corrupt or is not MNIST. {what_to_do_with(where or name)} "
        "For other idx data (e.g. Fashion-MNIST) pass load_digits(..., verify=False).")


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



# ------------------------------------------------------------------------------------------ 3. download ----

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



# -------------------------------------------------------------------------------- 4. synthetic digits ----

SYNTHETIC_SIZES = {"train": 5000, "test": 1000}  # ~0.25 ms per digit to render
_SYNTH_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
                "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSansMono.ttf",
                "DejaVuSansMono-Bold.ttf")
_FONT_CACHE: list = []


def _fonts() -> list:
    """The DejaVu fonts matplotlib ships (or Pillow's built-in font if they are missing), loaded once."""
    if not _FONT_CACHE:
        try:
            import matplotlib  # lazily: only the synthetic fallback needs its fonts, and it is slow to import

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


_SYNTH_CACHE: dict[tuple, DigitSet] = {}


def synthetic_digits(split: str = "train", n: int | None = None, seed: int = 0) -> DigitSet:
    """SYNTHETIC MNIST-like digits, balanced over 0..9, deterministic per ``(seed, split)``; train and test are
    rendered from different random streams, so they never share an image. Cached per process."""
    check_choice("split", split, DIGIT_SPLITS)
    n = SYNTHETIC_SIZES[split] if n is None else n
    check_int("n", n, 10, None, "ask for at least one digit of each class")
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


# ------------------------------------------------------------------------------------- 5. load_digits ----


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
    check_choice("split", split, DIGIT_SPLITS)
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

