"""Digit sources: idx parsing, checksums, the mirrors and the download cache, synthetic digits, load_digits.

Nothing here touches the network: an autouse fixture replaces ``digits._fetch`` with a function that fails the
test, points the cache at a temporary folder and unsets VDIFF_MNIST_DIR. Download tests serve files they write
themselves (a patched fetch, or local ``file://`` URLs).
"""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from vdiff_edu import digits as D
from vdiff_edu.digits import DownloadError, MNISTFileError, load_digits, parse_idx
from vdiff_edu.moving_mnist import EVAL_SEED, MovingMNIST, make_clips

REAL_FETCH = D._fetch  # kept before the autouse fixture replaces it; used on file:// URLs only


# ------------------------------------------------------------------------------------------------ helpers ----


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    def refuse(url, timeout):
        raise AssertionError(f"a test tried to reach the network: {url}")

    monkeypatch.setattr(D, "_fetch", refuse)
    monkeypatch.delenv("VDIFF_MNIST_DIR", raising=False)
    monkeypatch.setenv("VDIFF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VDIFF_OFFLINE", "1")
    monkeypatch.setattr(D, "_DOWNLOAD_FAILED", {})


def idx_bytes(array: np.ndarray) -> bytes:
    """The idx encoding of a uint8 array: 00 00 08 ndim, big-endian sizes, values."""
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def fake_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)  # every image distinct (with certainty)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels


def write_split(folder: Path, split: str, n: int, seed: int, gz: bool = True, dotted: bool = False) -> dict:
    """Write a fake MNIST split; return {stem: decompressed payload}."""
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = fake_split(n, seed)
    payloads = {}
    for stem, arr in zip(D.MNIST_FILES[split], (images, labels)):
        payload = idx_bytes(arr)
        name = stem.replace("-idx", ".idx") if dotted else stem
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(payload) if gz else payload)
        payloads[stem] = payload
    return payloads


@pytest.fixture
def trust(monkeypatch):
    """Make the published-checksum table accept given fake payloads (the checking code stays the real one)."""
    table = dict(D.RAW_MD5)
    monkeypatch.setattr(D, "RAW_MD5", table)

    def accept(payloads: dict):
        table.update({stem: hashlib.md5(p).hexdigest() for stem, p in payloads.items()})

    return accept



# ------------------------------------------------------------------------------------------- idx parsing ----


def test_parse_idx_round_trip_and_mnist_magic():
    images, labels = fake_split(7, 0)
    blob = idx_bytes(images)
    assert struct.unpack(">I", blob[:4])[0] == 2051  # MNIST's image magic
    assert struct.unpack(">I", idx_bytes(labels)[:4])[0] == 2049
    np.testing.assert_array_equal(parse_idx(blob), images)
    np.testing.assert_array_equal(parse_idx(idx_bytes(labels)), labels)


@pytest.mark.parametrize("damage, words", [
    (lambda b: b[:-1], "truncated"),
    (lambda b: b + b"\0", "longer than its header"),
    (lambda b: b"\x01" + b[1:], "not an idx file"),
    (lambda b: b[:2] + b"\x0d" + b[3:], "type code"),
    (lambda b: b[:6], "truncated"),
])
def test_parse_idx_refuses_damage_naming_the_file(damage, words):
    blob = idx_bytes(fake_split(3, 0)[0])
    with pytest.raises(MNISTFileError, match=words) as err:
        parse_idx(damage(blob), "some/file-idx3-ubyte")
    assert "some/file-idx3-ubyte" in str(err.value)


def test_truncated_gzip_in_folder_is_refused_naming_the_file(tmp_path):
    write_split(tmp_path, "test", 20, 0)
    bad = tmp_path / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-30])
    with pytest.raises(MNISTFileError, match="t10k-images-idx3-ubyte.gz") as err:
        load_digits("test", tmp_path, verify=False, verbose=False)
    # the user's own folder: never told to delete a file there
    assert "your own folder" in str(err.value) and "delete" not in str(err.value).lower()


def test_only_a_damaged_file_in_the_cache_may_be_deleted(monkeypatch, tmp_path):
    monkeypatch.setenv("VDIFF_CACHE_DIR", str(tmp_path / "cache"))
    assert "delete it" in D.what_to_do_with(str(D.mnist_cache_dir() / "t10k-images-idx3-ubyte.gz"))
    assert "never changes" in D.what_to_do_with(str(tmp_path / "mine" / "t10k-images-idx3-ubyte.gz"))
    assert "next mirror" in D.what_to_do_with("https://example.org/t10k-images-idx3-ubyte.gz")


def test_checksum_mismatch_is_refused_naming_the_file(tmp_path):
    write_split(tmp_path, "test", 20, 0)  # a valid idx file, but not the published MNIST bytes
    with pytest.raises(MNISTFileError, match="checksum mismatch") as err:
        load_digits("test", tmp_path, verbose=False)
    assert "t10k-" in str(err.value) and str(tmp_path) in str(err.value)
    assert "delete" not in str(err.value).lower()  # a message about your own folder never says delete it
    # verify=False takes other idx data (only a test split here: 20% of it is carved off as test)
    assert len(load_digits("test", tmp_path, verify=False, verbose=False)) == 4


def test_checksums_check_the_decompressed_payload_or_the_published_gz(monkeypatch):
    payload = idx_bytes(fake_split(4, 0)[1])
    stored = gzip.compress(payload)
    stem = "t10k-labels-idx1-ubyte"
    monkeypatch.setitem(D.RAW_MD5, stem, hashlib.md5(payload).hexdigest())
    D.verify_checksum(stem + ".gz", payload, gzip.compress(payload, mtime=123))  # any gzip of the right payload
    monkeypatch.setitem(D.RAW_MD5, stem, "0" * 32)
    with pytest.raises(MNISTFileError, match="checksum mismatch"):
        D.verify_checksum(stem + ".gz", payload, stored)
    monkeypatch.setitem(D.GZ_MD5, stem, hashlib.md5(stored).hexdigest())
    D.verify_checksum(stem + ".gz", payload, stored)  # the published .gz md5 is accepted too


def test_published_checksums_are_the_known_mnist_values():
    # the test split's decompressed md5s match the offline copy described in the shared README
    assert D.RAW_MD5["t10k-images-idx3-ubyte"] == "2646ac647ad5339dbf082846283269ea"
    assert D.GZ_MD5["t10k-images-idx3-ubyte"].startswith("9fb629c4")
    assert D.GZ_MD5["t10k-labels-idx1-ubyte"].startswith("ec29112d")


# --------------------------------------------------------------------------------------- digit sources ----


def test_folder_with_both_splits(tmp_path, trust, capsys):
    trust(write_split(tmp_path, "train", 50, 1) | write_split(tmp_path, "test", 20, 2))
    train, test = load_digits("train", tmp_path), load_digits("test", tmp_path)
    assert train.images.shape == (50, 28, 28) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64 and train.labels.tolist() == [i % 10 for i in range(50)]
    np.testing.assert_array_equal(test.images, fake_split(20, 2)[0])
    assert train.origin == test.origin == "folder" and not train.synthetic
    assert "folder" in capsys.readouterr().out  # it says which source it used


def test_torchvision_raw_layout_and_dotted_names(tmp_path, trust):
    raw = tmp_path / "MNIST" / "raw"
    trust(write_split(raw, "train", 30, 1, gz=False) | write_split(raw, "test", 20, 2, gz=False))
    assert len(load_digits("test", tmp_path, verbose=False)) == 20
    other = tmp_path / "dotted"
    trust(write_split(other, "train", 30, 1, dotted=True) | write_split(other, "test", 10, 3, dotted=True))
    assert len(load_digits("test", other, verbose=False)) == 10


def test_only_test_split_present_is_carved_disjointly(tmp_path, trust, capsys):
    trust(write_split(tmp_path, "test", 100, 2))
    train, test = load_digits("train", tmp_path), load_digits("test", tmp_path)
    assert (len(train), len(test)) == (80, 20)
    assert "carved" in train.source and "carved" in capsys.readouterr().out
    all_images = {im.tobytes() for im in fake_split(100, 2)[0]}
    train_set, test_set = {im.tobytes() for im in train.images}, {im.tobytes() for im in test.images}
    assert not train_set & test_set and train_set | test_set == all_images


def test_env_folder_is_used_and_root_argument_wins(tmp_path, monkeypatch):
    for name, n in (("a", 20), ("b", 30)):
        write_split(tmp_path / name, "train", 10, 1)
        write_split(tmp_path / name, "test", n, 2)
    monkeypatch.setenv("VDIFF_MNIST_DIR", str(tmp_path / "a"))
    assert len(load_digits("test", verify=False, verbose=False)) == 20
    assert len(load_digits("test", tmp_path / "b", verify=False, verbose=False)) == 30


def test_named_folder_without_mnist_fails_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("VDIFF_MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="VDIFF_MNIST_DIR.*nowhere"):
        load_digits("test", verbose=False)


def test_fallback_order_folder_then_cache_then_synthetic(tmp_path, trust, monkeypatch):
    cache = D.mnist_cache_dir()
    trust(write_split(cache, "train", 40, 5) | write_split(cache, "test", 20, 6))
    write_split(tmp_path / "mine", "train", 30, 7)
    monkeypatch.setattr(D, "synthetic_digits", lambda *a, **k: pytest.fail("synthetic used despite real digits"))
    monkeypatch.setenv("VDIFF_MNIST_DIR", str(tmp_path / "mine"))
    mine = load_digits("train", verify=False, verbose=False)  # 1. the named folder
    assert mine.origin == "folder" and len(mine) == 24  # its only split, carved
    monkeypatch.delenv("VDIFF_MNIST_DIR")
    cached = load_digits("test", verbose=False)  # 2. no folder: the cache
    assert cached.origin == "cache" and len(cached) == 20


def test_offline_without_mnist_falls_back_to_labelled_synthetic(monkeypatch, capsys):
    monkeypatch.setattr(D, "SYNTHETIC_SIZES", {"train": 20, "test": 10})
    digits = load_digits("test")  # 3. nothing anywhere, VDIFF_OFFLINE=1: synthetic
    assert digits.synthetic and "SYNTHETIC" in digits.source
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "VDIFF_MNIST_DIR" in out  # says what happened and what to do
    with pytest.raises(DownloadError, match="VDIFF_MNIST_DIR"):
        load_digits("test", allow_synthetic=False, verbose=False)


def test_offline_download_fails_once_then_not_again(monkeypatch):
    monkeypatch.delenv("VDIFF_OFFLINE")
    monkeypatch.setattr(D, "SYNTHETIC_SIZES", {"train": 20, "test": 10})
    calls = []

    def offline(url, timeout):
        calls.append((url, timeout))
        raise OSError("Name or service not known")

    monkeypatch.setattr(D, "_fetch", offline)
    assert load_digits("test", verbose=False).synthetic
    assert len(calls) == len(D.MIRRORS)  # each mirror once for the first file, then it gives up
    assert all(t <= 10 for _, t in calls)  # short timeouts: offline fails fast
    assert load_digits("train", verbose=False).synthetic and len(calls) == len(D.MIRRORS)
    assert load_digits("test", download=False, verbose=False).synthetic  # download=False never fetches


def test_download_tries_mirrors_in_turn_and_verifies(tmp_path, trust, monkeypatch):
    payloads = write_split(tmp_path / "server", "train", 30, 8) | write_split(tmp_path / "server", "test", 10, 9)
    trust(payloads)
    served = {stem: gzip.compress(p) for stem, p in payloads.items()}
    served["t10k-images-idx3-ubyte"] = gzip.compress(payloads["t10k-images-idx3-ubyte"][:-5])  # broken on mirror b
    log = []

    def fetch(url, timeout):
        log.append(url)
        mirror, name = url.rsplit("/", 1)
        if mirror.endswith("a"):
            raise OSError("connection refused")
        stem = name[:-3]
        blob = gzip.compress(payloads[stem]) if mirror.endswith("c") else served[stem]
        return blob

    monkeypatch.setattr(D, "_fetch", fetch)
    dest = D.download_mnist(tmp_path / "dl", mirrors=["http://a", "http://b", "http://c"], verbose=False)
    assert sorted(p.name for p in dest.iterdir()) == sorted(f"{s}.gz" for s in D.ALL_MNIST_FILES)  # no temp files
    assert "http://c/t10k-images-idx3-ubyte.gz" in log  # the bad copy on b was refused, c was tried
    assert len(load_digits("test", dest, verbose=False)) == 10
    # everything is there now: a second call downloads nothing
    log.clear()
    D.download_mnist(dest, mirrors=["http://a"], verbose=False)
    assert log == []


def test_download_with_every_mirror_bad_names_file_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "_fetch", lambda url, timeout: gzip.compress(idx_bytes(fake_split(3, 0)[0])))
    with pytest.raises(DownloadError) as err:
        D.download_mnist(tmp_path / "dl", mirrors=["http://x", "http://y"], verbose=False)
    msg = str(err.value)
    assert "train-images-idx3-ubyte" in msg and msg.count("checksum mismatch") == 2
    assert "VDIFF_MNIST_DIR" in msg and "VDIFF_OFFLINE" in msg
    assert not (tmp_path / "dl").exists() or not any((tmp_path / "dl").iterdir())  # nothing half-written


def test_download_from_file_urls_with_the_real_fetch(tmp_path, trust, monkeypatch):
    monkeypatch.setattr(D, "_fetch", REAL_FETCH)  # the real fetch, on local files only
    payloads = write_split(tmp_path / "server", "train", 20, 1) | write_split(tmp_path / "server", "test", 10, 2)
    monkeypatch.setattr(D, "RAW_MD5", {s: hashlib.md5(p).hexdigest() for s, p in payloads.items()})
    dest = D.download_mnist(mirrors=[(tmp_path / "missing").as_uri(), (tmp_path / "server").as_uri()],
                               verbose=False)
    assert dest == D.mnist_cache_dir()
    assert len(load_digits("train", download=False, verbose=False)) == 20


def test_synthetic_digits_are_deterministic_disjoint_and_digit_like(monkeypatch):
    monkeypatch.setattr(D, "_SYNTH_CACHE", {})
    a = D.synthetic_digits("train", n=30, seed=3)
    monkeypatch.setattr(D, "_SYNTH_CACHE", {})
    b = D.synthetic_digits("train", n=30, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    test = D.synthetic_digits("test", n=30, seed=3)
    assert not {im.tobytes() for im in a.images} & {im.tobytes() for im in test.images}
    assert np.bincount(a.labels, minlength=10).tolist() == [3] * 10
    for im in a.images:  # MNIST's normalisation: ink inside the frame, centre of mass near the middle
        ys, xs = np.nonzero(im)
        w = im[ys, xs].astype(float)
        assert abs((ys * w).sum() / w.sum() - 14) < 2 and abs((xs * w).sum() / w.sum() - 14) < 2
        assert max(np.ptp(ys), np.ptp(xs)) <= 20 and im.max() > 200  # fitted into a 20×20 box
    assert not np.array_equal(D.synthetic_digits("train", n=30, seed=4).images, a.images)



# ------------------------------------------------------------------- digit splits reach the clips ----


def test_train_and_test_never_share_a_digit_image(tmp_path, trust, monkeypatch):
    trust(write_split(tmp_path, "test", 200, 2))  # only the test split: train/test carved from it
    monkeypatch.setenv("VDIFF_MNIST_DIR", str(tmp_path))
    kw = dict(num_frames=2, image_size=32, digit_size=20, length=100, verbose=False)
    train, test, evalset = MovingMNIST("train", **kw), MovingMNIST("test", **kw), MovingMNIST.eval_set(**kw)
    used = {s: {ds.digits.images[k].tobytes() for i in range(len(ds)) for k in ds[i]["digit_ids"].tolist()}
            for s, ds in (("train", train), ("test", test), ("eval", evalset))}
    assert used["train"] and not used["train"] & (used["test"] | used["eval"])
    assert evalset.split == "eval" and evalset.seed == EVAL_SEED
    torch.testing.assert_close(make_clips(evalset, 3), make_clips(MovingMNIST.eval_set(**kw), 3))  # fixed



def test_load_digits_rejects_unknown_split():
    with pytest.raises(ValueError, match="split.*'validation'"):
        load_digits("validation")

