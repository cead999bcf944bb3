"""Digit sources and the Moving MNIST generator.

Nothing here touches the network: an autouse fixture replaces ``data._fetch`` with a function that fails the
test, points the cache at a temporary folder and unsets VDIFF_MNIST_DIR. Download tests serve files they write
themselves (a patched fetch, or local ``file://`` URLs).
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vdiff_edu import data
from vdiff_edu.data import (MOTIONS, DigitSet, DownloadError, MNISTFileError, MovingMNIST, from_uint8, load_digits,
                            make_caption, make_clips, motion_of, parse_idx, render_clip, simulate_trajectory,
                            to_uint8)

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
REAL_FETCH = data._fetch  # kept before the autouse fixture replaces it; used on file:// URLs only


# ------------------------------------------------------------------------------------------------ helpers ----


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    def refuse(url, timeout):
        raise AssertionError(f"a test tried to reach the network: {url}")

    monkeypatch.setattr(data, "_fetch", refuse)
    monkeypatch.delenv("VDIFF_MNIST_DIR", raising=False)
    monkeypatch.setenv("VDIFF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VDIFF_OFFLINE", "1")
    monkeypatch.setattr(data, "_DOWNLOAD_FAILED", {})


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
    for stem, arr in zip(data.MNIST_FILES[split], (images, labels)):
        payload = idx_bytes(arr)
        name = stem.replace("-idx", ".idx") if dotted else stem
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(payload) if gz else payload)
        payloads[stem] = payload
    return payloads


@pytest.fixture
def trust(monkeypatch):
    """Make the published-checksum table accept given fake payloads (the checking code stays the real one)."""
    table = dict(data.RAW_MD5)
    monkeypatch.setattr(data, "RAW_MD5", table)

    def accept(payloads: dict):
        table.update({stem: hashlib.md5(p).hexdigest() for stem, p in payloads.items()})

    return accept


def block_digits(n: int = 40, size: int = 28, seed: int = 0) -> DigitSet:
    """Quick stand-in digits: random ink, labels 0..9 in turn."""
    images, labels = fake_split(n, seed)
    return DigitSet(images, labels.astype(np.int64), "synthetic: test blocks")


TRAIN_DIGITS, TEST_DIGITS = block_digits(60, seed=1), block_digits(30, seed=2)


def small_ds(**kw) -> MovingMNIST:
    args = dict(num_frames=12, image_size=40, num_digits=2, digit_size=16, length=64, verbose=False)
    args.update(kw)
    args.setdefault("digits", TRAIN_DIGITS if args.get("split", "train") == "train" else TEST_DIGITS)
    return MovingMNIST(**args)


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
    with pytest.raises(MNISTFileError, match="t10k-images-idx3-ubyte.gz"):
        load_digits("test", tmp_path, verify=False, verbose=False)


def test_checksum_mismatch_is_refused_naming_the_file(tmp_path):
    write_split(tmp_path, "test", 20, 0)  # a valid idx file, but not the published MNIST bytes
    with pytest.raises(MNISTFileError, match="checksum mismatch") as err:
        load_digits("test", tmp_path, verbose=False)
    assert "t10k-" in str(err.value) and str(tmp_path) in str(err.value)
    # verify=False takes other idx data (only a test split here: 20% of it is carved off as test)
    assert len(load_digits("test", tmp_path, verify=False, verbose=False)) == 4


def test_checksums_check_the_decompressed_payload_or_the_published_gz(monkeypatch):
    payload = idx_bytes(fake_split(4, 0)[1])
    stored = gzip.compress(payload)
    stem = "t10k-labels-idx1-ubyte"
    monkeypatch.setitem(data.RAW_MD5, stem, hashlib.md5(payload).hexdigest())
    data.verify_checksum(stem + ".gz", payload, gzip.compress(payload, mtime=123))  # any gzip of the right payload
    monkeypatch.setitem(data.RAW_MD5, stem, "0" * 32)
    with pytest.raises(MNISTFileError, match="checksum mismatch"):
        data.verify_checksum(stem + ".gz", payload, stored)
    monkeypatch.setitem(data.GZ_MD5, stem, hashlib.md5(stored).hexdigest())
    data.verify_checksum(stem + ".gz", payload, stored)  # the published .gz md5 is accepted too


def test_published_checksums_are_the_known_mnist_values():
    # the test split's decompressed md5s match the offline copy described in the shared README
    assert data.RAW_MD5["t10k-images-idx3-ubyte"] == "2646ac647ad5339dbf082846283269ea"
    assert data.GZ_MD5["t10k-images-idx3-ubyte"].startswith("9fb629c4")
    assert data.GZ_MD5["t10k-labels-idx1-ubyte"].startswith("ec29112d")


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
    cache = data.mnist_cache_dir()
    trust(write_split(cache, "train", 40, 5) | write_split(cache, "test", 20, 6))
    write_split(tmp_path / "mine", "train", 30, 7)
    monkeypatch.setattr(data, "synthetic_digits", lambda *a, **k: pytest.fail("synthetic used despite real digits"))
    monkeypatch.setenv("VDIFF_MNIST_DIR", str(tmp_path / "mine"))
    mine = load_digits("train", verify=False, verbose=False)  # 1. the named folder
    assert mine.origin == "folder" and len(mine) == 24  # its only split, carved
    monkeypatch.delenv("VDIFF_MNIST_DIR")
    cached = load_digits("test", verbose=False)  # 2. no folder: the cache
    assert cached.origin == "cache" and len(cached) == 20


def test_offline_without_mnist_falls_back_to_labelled_synthetic(monkeypatch, capsys):
    monkeypatch.setattr(data, "SYNTHETIC_SIZES", {"train": 20, "test": 10})
    digits = load_digits("test")  # 3. nothing anywhere, VDIFF_OFFLINE=1: synthetic
    assert digits.synthetic and "SYNTHETIC" in digits.source
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "VDIFF_MNIST_DIR" in out  # says what happened and what to do
    with pytest.raises(DownloadError, match="VDIFF_MNIST_DIR"):
        load_digits("test", allow_synthetic=False, verbose=False)


def test_offline_download_fails_once_then_not_again(monkeypatch):
    monkeypatch.delenv("VDIFF_OFFLINE")
    monkeypatch.setattr(data, "SYNTHETIC_SIZES", {"train": 20, "test": 10})
    calls = []

    def offline(url, timeout):
        calls.append((url, timeout))
        raise OSError("Name or service not known")

    monkeypatch.setattr(data, "_fetch", offline)
    assert load_digits("test", verbose=False).synthetic
    assert len(calls) == len(data.MIRRORS)  # each mirror once for the first file, then it gives up
    assert all(t <= 10 for _, t in calls)  # short timeouts: offline fails fast
    assert load_digits("train", verbose=False).synthetic and len(calls) == len(data.MIRRORS)
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

    monkeypatch.setattr(data, "_fetch", fetch)
    dest = data.download_mnist(tmp_path / "dl", mirrors=["http://a", "http://b", "http://c"], verbose=False)
    assert sorted(p.name for p in dest.iterdir()) == sorted(f"{s}.gz" for s in data.ALL_MNIST_FILES)  # no temp files
    assert "http://c/t10k-images-idx3-ubyte.gz" in log  # the bad copy on b was refused, c was tried
    assert len(load_digits("test", dest, verbose=False)) == 10
    # everything is there now: a second call downloads nothing
    log.clear()
    data.download_mnist(dest, mirrors=["http://a"], verbose=False)
    assert log == []


def test_download_with_every_mirror_bad_names_file_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_fetch", lambda url, timeout: gzip.compress(idx_bytes(fake_split(3, 0)[0])))
    with pytest.raises(DownloadError) as err:
        data.download_mnist(tmp_path / "dl", mirrors=["http://x", "http://y"], verbose=False)
    msg = str(err.value)
    assert "train-images-idx3-ubyte" in msg and msg.count("checksum mismatch") == 2
    assert "VDIFF_MNIST_DIR" in msg and "VDIFF_OFFLINE" in msg
    assert not (tmp_path / "dl").exists() or not any((tmp_path / "dl").iterdir())  # nothing half-written


def test_download_from_file_urls_with_the_real_fetch(tmp_path, trust, monkeypatch):
    monkeypatch.setattr(data, "_fetch", REAL_FETCH)  # the real fetch, on local files only
    payloads = write_split(tmp_path / "server", "train", 20, 1) | write_split(tmp_path / "server", "test", 10, 2)
    monkeypatch.setattr(data, "RAW_MD5", {s: hashlib.md5(p).hexdigest() for s, p in payloads.items()})
    dest = data.download_mnist(mirrors=[(tmp_path / "missing").as_uri(), (tmp_path / "server").as_uri()],
                               verbose=False)
    assert dest == data.mnist_cache_dir()
    assert len(load_digits("train", download=False, verbose=False)) == 20


def test_synthetic_digits_are_deterministic_disjoint_and_digit_like(monkeypatch):
    monkeypatch.setattr(data, "_SYNTH_CACHE", {})
    a = data.synthetic_digits("train", n=30, seed=3)
    monkeypatch.setattr(data, "_SYNTH_CACHE", {})
    b = data.synthetic_digits("train", n=30, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    test = data.synthetic_digits("test", n=30, seed=3)
    assert not {im.tobytes() for im in a.images} & {im.tobytes() for im in test.images}
    assert np.bincount(a.labels, minlength=10).tolist() == [3] * 10
    for im in a.images:  # MNIST's normalisation: ink inside the frame, centre of mass near the middle
        ys, xs = np.nonzero(im)
        w = im[ys, xs].astype(float)
        assert abs((ys * w).sum() / w.sum() - 14) < 2 and abs((xs * w).sum() / w.sum() - 14) < 2
        assert max(np.ptp(ys), np.ptp(xs)) <= 20 and im.max() > 200  # fitted into a 20×20 box
    assert not np.array_equal(data.synthetic_digits("train", n=30, seed=4).images, a.images)


# -------------------------------------------------------------------------------------------- the clips ----


def test_item_shapes_dtypes_and_ranges():
    ds = small_ds()
    item = ds[3]
    f, k = 12, 2
    assert item["video"].shape == (1, f, 40, 40) and item["video"].dtype == torch.float32
    assert item["video"].min() >= -1 and item["video"].max() <= 1 and item["video"].min() == -1
    assert item["labels"].shape == (k,) and item["labels"].dtype == torch.int64
    assert item["positions"].shape == item["velocities"].shape == (f, k, 2)
    assert item["positions"].dtype == torch.float32
    assert item["bounces"].shape == (f, k) and item["bounces"].dtype == torch.bool
    assert item["index"] == 3 and isinstance(item["caption"], str)
    np.testing.assert_array_equal(item["labels"].numpy(), TRAIN_DIGITS.labels[item["digit_ids"].numpy()])


def test_video_is_the_digits_pasted_at_their_positions():
    ds = small_ds(rule="deterministic")
    item = ds[5]
    pixels = [data.resize_digit(TRAIN_DIGITS.images[k], 16) for k in item["digit_ids"].tolist()]
    expected = render_clip(pixels, item["positions"].double().numpy(), 40, "deterministic") * 2 - 1
    torch.testing.assert_close(item["video"][0], torch.from_numpy(expected), atol=1e-6, rtol=0)


@pytest.mark.parametrize("rule", data.RULES)
def test_digits_stay_inside_the_frame(rule):
    ds = small_ds(rule=rule, num_digits=3, num_frames=30, length=40)
    canvas = 40 - 16
    for i in range(len(ds)):
        pos = ds[i]["positions"]
        assert pos.min() >= 0 and pos.max() <= canvas
        assert torch.round(pos).max() <= canvas  # the rendered corner too


def test_deterministic_rule_reflects_exactly_at_walls():
    ds = small_ds(rule="deterministic", num_frames=40, length=30)
    canvas, n_bounces = 24.0, 0
    for i in range(len(ds)):
        item = ds[i]
        pos, vel, bounced = (item[k].double().numpy() if k != "bounces" else item[k].numpy()
                             for k in ("positions", "velocities", "bounces"))
        np.testing.assert_allclose(np.linalg.norm(vel, axis=-1), ds.speed, rtol=1e-5)  # constant speed
        for f in range(1, 40):
            for k in range(2):
                if not bounced[f, k]:
                    np.testing.assert_allclose(pos[f, k], pos[f - 1, k] + vel[f - 1, k], atol=1e-4)
                    np.testing.assert_array_equal(vel[f, k], vel[f - 1, k])
                    continue
                n_bounces += 1
                on_wall = np.isclose(pos[f, k], 0) | np.isclose(pos[f, k], canvas)
                assert on_wall.any(), "a bounce happens at a wall"
                flipped = np.sign(vel[f, k]) != np.sign(vel[f - 1, k])
                np.testing.assert_array_equal(flipped, on_wall)  # exactly the axis that hit the wall flips
                np.testing.assert_allclose(np.abs(vel[f, k]), np.abs(vel[f - 1, k]), rtol=1e-6)  # reflection
    assert n_bounces > 20


def test_stochastic_rule_draws_new_speeds_at_bounces():
    ds = small_ds(rule="stochastic", num_frames=40, length=30)
    canvas, s, changed, n_bounces, single, new_cross = 24.0, ds.speed, 0, 0, 0, 0
    for i in range(len(ds)):
        item = ds[i]
        pos, vel, bounced = item["positions"].double().numpy(), item["velocities"].double().numpy(), item["bounces"]
        for f in range(1, 40):
            for k in range(2):
                if not bounced[f, k]:
                    np.testing.assert_array_equal(vel[f, k], vel[f - 1, k])  # straight line between bounces
                    continue
                n_bounces += 1
                low, high = np.isclose(pos[f, k], 0), np.isclose(pos[f, k], canvas)
                assert (low | high).any()
                inward = vel[f, k][low | high] * np.where(low, 1, -1)[low | high]
                assert (inward >= s / 3.6 - 1e-5).all() and (inward <= 4 * s / 3.6 + 1e-5).all()  # new inward speed
                assert (np.abs(vel[f, k]) <= 4 * s / 3.6 + 1e-5).all()  # cross speed within range
                changed += not np.isclose(np.linalg.norm(vel[f, k]), np.linalg.norm(vel[f - 1, k]))
                cross = ~(low | high)
                new_cross += bool(cross.any() and vel[f, k][cross] != vel[f - 1, k][cross])
                single += bool(cross.any())
    assert n_bounces > 20 and changed == n_bounces  # the speed changes at every bounce
    assert single > 10 and new_cross == single  # ... and so does the speed along the wall


def test_compositing_max_versus_sum_then_clip():
    a = np.full((4, 4), 0.6, np.float32)
    pos = np.zeros((1, 2, 2))  # both digits at the same corner
    assert render_clip([a, a], pos, 6, "deterministic")[0, 0, 0] == pytest.approx(0.6)
    assert render_clip([a, a], pos, 6, "stochastic")[0, 0, 0] == pytest.approx(1.0)
    half = np.full((4, 4), 0.3, np.float32)
    assert render_clip([half, half], pos, 6, "stochastic")[0, 0, 0] == pytest.approx(0.6)


def test_trajectory_hand_computed():
    # canvas 10, start (5, 9), heading right at 2 px/frame: hits x = 10 at frame 1 and comes back
    class Fixed:
        def uniform(self, lo, hi, size=None):
            return np.array([5.0, 9.0]) if size == 2 else 0.0  # θ = 0: v = (0, speed)

    pos, vel, bounces = simulate_trajectory(Fixed(), 4, 10.0, 2.0)
    np.testing.assert_allclose(pos[:, 1], [9, 10, 8, 6])
    np.testing.assert_allclose(vel[:, 1], [2, -2, -2, -2])
    assert bounces.tolist() == [False, True, False, False]


# ----------------------------------------------------------------------------------------- determinism ----


def test_clip_depends_only_on_seed_split_and_index():
    a, b = small_ds(), small_ds()
    order = [7, 2, 50, 2, 0]
    for i in order:
        torch.testing.assert_close(a[i]["video"], b[i]["video"])
    batch = a.batch(order)
    assert batch["video"].shape == (5, 1, 12, 40, 40)
    for row, i in enumerate(order):
        torch.testing.assert_close(batch["video"][row], b[i]["video"])
        assert batch["caption"][row] == b[i]["caption"]
    torch.testing.assert_close(a[-1]["video"], a[63]["video"])
    assert not torch.equal(a[0]["video"], small_ds(seed=1)[0]["video"])
    assert not torch.equal(a[0]["positions"], small_ds(split="test")[0]["positions"])


def test_dataloader_workers_and_batch_sizes_give_the_same_clips():
    ds = small_ds(length=12, num_frames=4)
    reference = make_clips(ds, 12)  # (12, 1, 4, 40, 40)
    assert reference.shape == (12, 1, 4, 40, 40)
    seen = torch.cat([b["video"] for b in DataLoader(ds, batch_size=5, num_workers=2)])
    torch.testing.assert_close(seen, reference)
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(0)).tolist()
    loader = DataLoader(ds, batch_size=4, sampler=perm)
    shuffled = torch.cat([b["video"] for b in loader])
    torch.testing.assert_close(shuffled, reference[perm])


def test_index_out_of_range():
    ds = small_ds(length=5)
    with pytest.raises(IndexError, match="length 5"):
        ds[5]
    with pytest.raises(ValueError, match="length"):
        make_clips(ds, 6)


# --------------------------------------------------------------------------------- captions and motions ----


def test_motion_words_hand_computed():
    assert motion_of([[0.0, 3.0], [0.0, -3.0]]) == "horizontal"
    assert motion_of([[3.0, 0.5]]) == "vertical"
    assert motion_of([[2.0, 2.0]]) == "diagonal"
    assert make_caption([3, 7], ["horizontal", "vertical"]) == \
        "the digit 3 moves left and right and the digit 7 moves up and down"
    assert make_caption([1, 2, 3], MOTIONS) == ("the digit 1 moves left and right, the digit 2 moves up and down "
                                                "and the digit 3 moves diagonally")


@pytest.mark.parametrize("rule", data.RULES)
def test_captions_agree_with_labels_and_motion(rule):
    ds = small_ds(rule=rule, length=40)
    kinds = set()
    for i in range(len(ds)):
        item = ds[i]
        motions = [motion_of(item["velocities"][:, k].numpy()) for k in range(2)]
        assert [MOTIONS[m] for m in item["motions"].tolist()] == motions
        assert item["caption"] == make_caption(item["labels"].tolist(), motions)
        kinds.update(motions)
    assert kinds == set(MOTIONS)


# ---------------------------------------------------------------------------------- splits and holdout ----


def test_train_and_test_never_share_a_digit_image(tmp_path, trust, monkeypatch):
    trust(write_split(tmp_path, "test", 200, 2))  # only the test split: train/test carved from it
    monkeypatch.setenv("VDIFF_MNIST_DIR", str(tmp_path))
    kw = dict(num_frames=2, image_size=32, digit_size=20, length=100, verbose=False)
    train, test, evalset = MovingMNIST("train", **kw), MovingMNIST("test", **kw), MovingMNIST.eval_set(**kw)
    used = {s: {ds.digits.images[k].tobytes() for i in range(len(ds)) for k in ds[i]["digit_ids"].tolist()}
            for s, ds in (("train", train), ("test", test), ("eval", evalset))}
    assert used["train"] and not used["train"] & (used["test"] | used["eval"])
    assert evalset.split == "eval" and evalset.seed == data.EVAL_SEED
    torch.testing.assert_close(make_clips(evalset, 3), make_clips(MovingMNIST.eval_set(**kw), 3))  # fixed


def test_holdout_pairs_never_in_train_and_alone_in_holdout_split():
    held = {(d, "vertical") for d in range(10)} | {(3, "diagonal")}
    train = small_ds(holdout=held, length=80)
    for i in range(len(train)):
        item = train[i]
        pairs = {(d, MOTIONS[m]) for d, m in zip(item["labels"].tolist(), item["motions"].tolist())}
        assert not pairs & held
    alone = small_ds(split="holdout", holdout=held, length=40)
    seen = set()
    for i in range(len(alone)):
        item = alone[i]
        pairs = {(d, MOTIONS[m]) for d, m in zip(item["labels"].tolist(), item["motions"].tolist())}
        assert pairs <= held
        seen |= pairs
    assert (3, "diagonal") in seen and len(seen) > 5


# -------------------------------------------------------------------------------------- bad parameters ----


@pytest.mark.parametrize("kwargs, words", [
    (dict(image_size=20, digit_size=28), ["image_size=20", "digit_size=28"]),
    (dict(num_frames=0), ["num_frames", "0", "[1, 1000]"]),
    (dict(speed=-1.0), ["speed", "-1.0", "(0, image_size"]),
    (dict(rule="chaotic"), ["rule", "chaotic", "deterministic", "stochastic"]),
    (dict(num_digits=4), ["num_digits", "4", "[1, 3]"]),
    (dict(num_digits=0), ["num_digits", "0", "[1, 3]"]),
    (dict(split="valid"), ["split", "valid", "train"]),
    (dict(seed=-3), ["seed", "-3"]),
    (dict(length=0), ["length", "0"]),
    (dict(digit_size=2), ["digit_size", "2", "[4, 256]"]),
    (dict(holdout={(3, "sideways")}), ["holdout motion", "sideways", "horizontal"]),
    (dict(holdout={(12, "vertical")}), ["holdout digit", "12", "[0, 9]"]),
    (dict(split="holdout"), ["holdout", "non-empty"]),
])
def test_bad_parameters_name_the_parameter_value_and_range(kwargs, words):
    with pytest.raises(ValueError) as err:
        small_ds(**kwargs)
    for w in words:
        assert w in str(err.value), f"{w!r} missing from: {err.value}"


def test_load_digits_rejects_unknown_split():
    with pytest.raises(ValueError, match="split.*'validation'"):
        load_digits("validation")


# ------------------------------------------------------------------------------------- pixel round trip ----


def test_uint8_round_trip_and_black_background():
    video = small_ds()[0]["video"]
    frames = to_uint8(video)
    assert frames.dtype == torch.uint8 and frames.shape == video.shape
    assert frames.min() == 0 and (frames == 0).float().mean() > 0.5  # black background
    torch.testing.assert_close(from_uint8(frames), video, atol=1 / 127.5, rtol=0)
    assert torch.equal(to_uint8(from_uint8(frames)), frames)
    u = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(to_uint8(from_uint8(u)), u)
    assert to_uint8(np.array([-2.0, -1.0, 0.0, 1.0, 3.0])).tolist() == [0, 0, 128, 255, 255]
    with pytest.raises(TypeError, match="uint8"):
        from_uint8(video)


def test_small_digits_for_the_cpu_preset():
    ds = small_ds(image_size=32, num_frames=8, num_digits=1, digit_size=20)
    item = ds[0]
    assert item["video"].shape == (1, 8, 32, 32)
    assert ds.speed == pytest.approx(1.8)  # 3.6 px/frame at 64 px, scaled with the frame
    small = data.resize_digit(TRAIN_DIGITS.images[0], 20)
    assert small.shape == (20, 20) and small.dtype == np.float32 and 0 <= small.min() and small.max() <= 1


# ------------------------------------------------------------------------------------ notebook exercises ----


def test_exercise_checks_accept_solutions_and_reject_wrong_answers(capsys):
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        from exercises import checks_01 as checks
        from exercises import solutions_01 as solutions
    finally:
        sys.path.remove(str(NOTEBOOKS))
    assert checks.check_stochastic_step(solutions.stochastic_step)

    def reflect(pos, vel, canvas, speed, rng):  # the deterministic rule: right physics, wrong rule set
        pos = pos + vel
        low, high = pos < 0, pos > canvas
        return np.clip(pos, 0, canvas), np.where(low, abs(vel), np.where(high, -abs(vel), vel))

    assert not checks.check_stochastic_step(reflect)
    assert not checks.check_stochastic_step(lambda pos, vel, canvas, speed, rng: (pos + vel, vel))  # no walls
    assert checks.check_motion_word(solutions.motion_word)
    assert not checks.check_motion_word(lambda v: "horizontal")
    assert checks.check_bounces_from_positions(solutions.bounces_from_positions)
    assert not checks.check_bounces_from_positions(lambda p, canvas: (p == 0).any(axis=1))  # forgets far walls

    def not_yet(*args):
        raise NotImplementedError

    for check in (checks.check_stochastic_step, checks.check_motion_word, checks.check_bounces_from_positions):
        assert not check(not_yet)  # a friendly message, no exception
    out = capsys.readouterr().out
    assert "Hint" in out and "not attempted" in out.lower()
