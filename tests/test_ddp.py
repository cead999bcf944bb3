"""Two processes on the gloo backend (torchrun, CPU) train exactly like one process with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread

WORKER = """
import sys, torch
sys.path.insert(0, {tests!r})
from test_train import make_trainer
from vdiff_edu.train import cleanup_distributed

trainer = make_trainer(steps=5)  # global batch 4: each of the 2 processes gets 2 clips per step
trainer.train()
if trainer.rank == 0:
    torch.save({{"model": trainer.module.state_dict(), "loss": trainer.history["loss"],
                "world_size": trainer.world_size}}, {out!r})
del trainer  # its DDP wrapper holds the process group: gone before the group is torn down (cleanup_distributed)
cleanup_distributed()
"""


@pytest.mark.slow  # starts three Python processes (about 20 s on 2 busy cores)
def test_two_gloo_processes_match_one_process(tmp_path):
    from test_train import make_trainer

    out = tmp_path / "ddp.pt"
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(tests=str(ROOT / "tests"), out=str(out)))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             str(script)], env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"torchrun failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    ddp = torch.load(out, weights_only=True)
    assert ddp["world_size"] == 2

    single = make_trainer(steps=5)
    single.train()
    assert single.world_size == 1
    # the same global batch, timesteps and noise: only the order of float additions differs
    torch.testing.assert_close(torch.tensor(ddp["loss"]), torch.tensor(single.history["loss"]), rtol=1e-5, atol=1e-6)
    for name, x in single.module.state_dict().items():
        torch.testing.assert_close(ddp["model"][name], x, rtol=1e-4, atol=1e-5, msg=f"{name} differs under DDP")
    # and not trivially: the weights did move
    assert not torch.equal(single.module.state_dict()["conv_out.conv.weight"],
                           make_trainer(steps=5).module.state_dict()["conv_out.conv.weight"])


@pytest.mark.slow  # three command-line runs, two of them under torchrun (about a minute on 2 cores)
def test_the_command_line_under_torchrun_matches_one_process_and_resumes_across_a_change_of_n(tmp_path, monkeypatch):
    """`torchrun --nproc_per_node=2 -m vdiff_edu train`: rank 0 makes the autoencoder and the latents while the other
    waits, both train the denoiser under DDP with the global batch split, only rank 0 writes; and a run started
    with two processes resumes with one."""
    from vdiff_edu.checkpoint import load_checkpoint, load_weights
    from vdiff_edu.train import latest_checkpoint

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "VDIFF_SMOKE": "1", "VDIFF_OFFLINE": "1",
           "VDIFF_RUNS_DIR": str(tmp_path)}
    env.pop("WORLD_SIZE", None)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "vdiff_edu"]

    def run(cmd, *args):
        out = subprocess.run(cmd + ["train", *args], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"{' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        return out.stdout

    two = run(torchrun, "--preset", "smoke", "--name", "two")
    assert "2 processes" in two and two.count("run folder:") == 1  # one process speaks for both
    from vdiff_edu import __main__ as cli  # one process: this one (one thread, as the two above)

    monkeypatch.setenv("VDIFF_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("VDIFF_SMOKE", "1")
    assert cli.main(["train", "--preset", "smoke", "--name", "one"]) == 0
    w2 = load_weights(tmp_path / "two" / "weights" / "unet.safetensors")[0]
    w1 = load_weights(tmp_path / "one" / "weights" / "unet.safetensors")[0]
    assert load_weights(tmp_path / "two" / "weights" / "autoencoder.safetensors")[0].keys() == \
        load_weights(tmp_path / "one" / "weights" / "autoencoder.safetensors")[0].keys()
    for name, x in w1.items():  # the same global batches: only the order of float additions differs
        torch.testing.assert_close(w2[name], x, rtol=1e-3, atol=1e-4, msg=f"{name} differs under torchrun")
    assert load_checkpoint(latest_checkpoint(tmp_path / "two"))["world_size"] == 2
    # a run of two processes, resumed by one (this one: a third torchrun launch would cost 15 s more)
    assert cli.main(["train", "--name", "two", "--resume", "latest", "--steps", "14"]) == 0
    state = load_checkpoint(latest_checkpoint(tmp_path / "two"))
    assert state["step"] == 14 and state["world_size"] == 1
