"""Safe, atomic saving: a crash never corrupts the last good file and a checkpoint can never run code."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from vdiff_edu.checkpoint import (CheckpointError, load_checkpoint, load_weights, read_weights_metadata,
                                  save_checkpoint, save_weights, weights_fingerprint)
from vdiff_edu.utils import atomic_path, atomic_write_bytes, count_parameters, seed_everything


def test_atomic_path_keeps_last_good_file_when_writing_crashes(tmp_path):
    target = tmp_path / "file.bin"
    atomic_write_bytes(target, b"good")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half writ")
            raise KeyboardInterrupt  # the user pressed Ctrl-C mid-save
    assert target.read_bytes() == b"good"
    assert os.listdir(tmp_path) == ["file.bin"], "the temporary file must be cleaned up"


def test_atomic_writes_get_the_usual_permissions_not_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        os.umask(0o077)
        atomic_write_bytes(tmp_path / "b.bin", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o644  # what open() would have made
    assert (tmp_path / "b.bin").stat().st_mode & 0o777 == 0o600  # a strict umask is respected


def test_fingerprints_tell_weights_apart_and_nan_weights_are_never_saved(tmp_path):
    model = nn.Linear(3, 4)
    same = nn.Linear(3, 4)
    same.load_state_dict(model.state_dict())
    assert weights_fingerprint(model) == weights_fingerprint(same)
    with torch.no_grad():
        same.bias[0] += 1e-3
    assert weights_fingerprint(model) != weights_fingerprint(same)
    save_weights(tmp_path / "good.safetensors", model)
    with torch.no_grad():
        model.weight[1, 2] = float("nan")
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        save_weights(tmp_path / "good.safetensors", model)
    load_weights(tmp_path / "good.safetensors", same)  # the earlier file is untouched and still loads
    assert torch.isfinite(same.weight).all()


def test_weights_round_trip_with_metadata(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    path = save_weights(tmp_path / "m.safetensors", model, {"config": {"width": 4}, "steps": 7})
    fresh = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    _, meta = load_weights(path, fresh)
    assert meta == {"config": {"width": 4}, "steps": 7, "fingerprint": weights_fingerprint(model)}
    assert read_weights_metadata(path) == meta
    x = torch.randn(5, 3)
    torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)


def test_truncated_weights_give_a_clear_error(tmp_path):
    path = save_weights(tmp_path / "m.safetensors", nn.Linear(8, 8))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="m.safetensors"):
        load_weights(path)


def test_checkpoint_round_trip_keeps_tensors_and_plain_values(tmp_path):
    state = {"step": 3, "model": {"w": torch.arange(4.0)}, "rng": torch.get_rng_state(), "config": {"lr": 1e-3}}
    loaded = load_checkpoint(save_checkpoint(tmp_path / "c.pt", state))
    assert loaded["step"] == 3 and loaded["config"] == {"lr": 1e-3} and loaded["format_version"] == 1
    torch.testing.assert_close(loaded["model"]["w"], torch.arange(4.0))


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_crafted_pickle_checkpoint_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "payload": _RunsCode()}, path)
    with pytest.raises(CheckpointError, match="run code"):
        load_checkpoint(path)


def test_truncated_checkpoint_gives_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", {"w": torch.randn(1000)})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)


def test_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def test_seed_everything_makes_draws_repeatable_and_count_parameters():
    g1 = seed_everything(5)
    a = torch.randn(3), torch.randn(3, generator=g1)
    g2 = seed_everything(5)
    b = torch.randn(3), torch.randn(3, generator=g2)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert count_parameters(nn.Linear(3, 4)) == 3 * 4 + 4
