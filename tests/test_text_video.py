"""Text-to-video (issue 10): the text presets, captions as the run's condition, a text encoder trained jointly with
the U-Net, saving and loading it with the U-Net, prompts in, and the command line's --prompt / --prompts.

One smoke-text run is trained from nothing once for the module (a few seconds)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from vdiff_edu import __main__ as cli
from vdiff_edu import captions
from vdiff_edu.conditioning import CaptionIds, TextConditionedDenoiser, conditioning_for, denoiser_for
from vdiff_edu.config import PRESETS, check_preset
from vdiff_edu.pipeline import TEXT_ENCODER_FILE, LatentVideoPipeline
from vdiff_edu.presets import ExperimentConfig
from vdiff_edu.recipe import training_dataset, train_pipeline
from vdiff_edu.schedule import NoiseSchedule
from vdiff_edu.train import TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


def quick_text() -> ExperimentConfig:
    """smoke-text, smaller still: the whole run in a few seconds."""
    return shrunk(ExperimentConfig.preset("smoke-text"))


def shrunk(cfg: ExperimentConfig) -> ExperimentConfig:
    """A smoke preset smaller still (16 clips, a few steps a stage)."""
    return replace(cfg, num_clips=16, autoencoder=replace(cfg.autoencoder, train_steps=3, batch_size=8),
                   image_train=replace(cfg.image_train, steps=3, batch_size=8, progress="none"),
                   train=replace(cfg.train, steps=4, batch_size=2, warmup=1, checkpoint_every=0, progress="none"))


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("text") / "st"
    result = train_pipeline(quick_text(), run_dir, log=lambda s: None, minutes=0)
    return run_dir, result


# ---------------------------------------------------------------- presets ----


@pytest.mark.parametrize("name", ["smoke-text", "cpu-text", "gpu-text"])
def test_text_presets_read_captions_only(name):
    assert name in PRESETS and check_preset(name) == name
    cfg = ExperimentConfig.preset(name)
    assert cfg.text is not None and cfg.unet.context_dim == cfg.text.width
    assert cfg.unet.num_label_slots == 0 and not cfg.reverse_augment
    assert cfg.styles == ("thin", "regular", "bold") and cfg.holdout
    assert cfg.text.max_len >= captions.longest_caption(cfg.num_digits) + 2  # <bos> … <eos>
    back = ExperimentConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))  # as run.json and weights store it
    assert back.to_dict() == cfg.to_dict()
    assert [k.name for k in conditioning_for(cfg).kinds] == ["caption"]


def test_label_presets_keep_labels_and_no_text():
    cfg = ExperimentConfig.preset("cpu")
    assert cfg.text is None and [k.name for k in conditioning_for(cfg).kinds] == ["labels"]
    assert cfg.dataset_kwargs() == dict(num_frames=8, image_size=32, num_digits=1, digit_size=20,
                                        rule="deterministic", speed=None)  # the clips of before: no styles key


def test_a_text_preset_refuses_reversed_clips_and_a_mismatched_width():
    cfg = ExperimentConfig.preset("smoke-text")
    with pytest.raises(ValueError, match="played backwards"):
        replace(cfg, reverse_augment=True)
    with pytest.raises(ValueError, match="context_dim"):
        replace(cfg, unet=replace(cfg.unet, context_dim=16))


def test_training_captions_are_train_template_paraphrases_of_the_clip():
    cfg = replace(ExperimentConfig.preset("smoke-text"), num_clips=40)
    ds = training_dataset(cfg)
    texts = [ds[i]["caption"] for i in range(len(ds))]
    assert texts == [ds[i]["caption"] for i in range(len(ds))]  # depends only on (seed, index)
    held_out = {captions.caption(captions.meanings_of_item(ds[i]), t) for i in range(len(ds))
                for t in captions.HELD_OUT_TEMPLATES}
    for i, text in enumerate(texts):
        item = ds[i]
        assert captions.parse(text) == captions.meanings_of_item(item)[0]  # digit, motion, direction, style
        assert (int(item["labels"][0]), captions.MOTIONS[int(item["motions"][0])]) not in cfg.holdout
        assert (int(item["labels"][0]), captions.STYLES[int(item["styles"][0])]) not in cfg.holdout
    assert len(set(texts)) > 20 and not set(texts) & held_out


# ---------------------------------------------------------------- the text encoder inside the model ----


def test_the_denoiser_reads_the_prompt_through_cross_attention():
    torch.manual_seed(0)
    cfg = ExperimentConfig.preset("smoke-text")
    model = denoiser_for(cfg).eval()
    assert isinstance(model, TextConditionedDenoiser)
    with torch.no_grad():
        for p in model.unet.parameters():
            if not p.any():  # zero at init (cross-attention's and the last layer's output): as after some training
                p.normal_(std=0.2)
    kind = conditioning_for(cfg).kind("caption")
    x, t = torch.randn(2, 4, 4, 4, 4), torch.tensor([500, 500])
    a = model(x, t, kind.from_batch({"caption": ["a bold 7 moves left and right"] * 2}))
    b = model(x, t, kind.from_batch({"caption": ["the digit 3 moves up and down"] * 2}))
    null = model(x, t, kind.null(kind.from_batch({"caption": ["a 3"] * 2})))
    assert a.shape == x.shape and torch.isfinite(a).all()
    assert (a - b).abs().max() > 1e-3 and (a - null).abs().max() > 1e-3


def test_the_text_encoder_trains_with_the_unet_and_is_averaged():
    torch.manual_seed(0)
    cfg = ExperimentConfig.preset("smoke-text")
    model = denoiser_for(cfg)
    conditioning = conditioning_for(cfg)
    kind = conditioning.kind("caption")
    assert isinstance(kind, CaptionIds)
    prompts = ["a bold 7 moves left and right", "the digit 3 moves up and down", "a thin one", "8"] * 2
    data = {"latents": torch.randn(8, 4, 4, 4, 4), **kind.cache_entries({"caption": prompts})}
    before = {k: v.clone() for k, v in model.text_encoder.state_dict().items()}
    trainer = Trainer(model, NoiseSchedule(), data, TrainConfig(steps=3, batch_size=4, warmup=1, progress="none",
                                                                checkpoint_every=0, ema_decay=0.5),
                      device="cpu", conditioning=conditioning)
    trainer.train()
    after = model.text_encoder.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # in the optimizer
    ema = trainer.ema.model.text_encoder.state_dict()
    assert any(not torch.equal(before[k], ema[k]) for k in before)  # and in the EMA


# ---------------------------------------------------------------- a run from nothing, saved and loaded ----


def test_a_smoke_text_run_saves_the_text_encoder_and_samples_from_prompts(text_run):
    run_dir, result = text_run
    assert (run_dir / "weights" / TEXT_ENCODER_FILE).is_file()
    pipe = LatentVideoPipeline.from_pretrained(run_dir)
    assert pipe.reads_prompts and pipe.conditioning.names == ["caption"]
    trained = result["pipeline"].unet.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in pipe.unet.state_dict().items())  # U-Net and encoder
    prompts = ["a bold 7 moves left and right", "", "the digit 3 moves up and down"]
    video = pipe(prompts=prompts, seed=0)
    assert video.shape == (3, 1, 4, 16, 16) and torch.isfinite(video).all()
    assert torch.equal(video, pipe(prompts=prompts, seed=0))
    with pytest.raises(ValueError, match="'bolt' \\(closest: 'bold'"):
        pipe.encode_condition(prompts=["a bolt 7"])
    with pytest.raises(ValueError, match="reads prompts, not labels"):
        pipe.encode_condition([3])


def test_a_label_model_refuses_prompts(text_run):
    pipe = LatentVideoPipeline.from_pretrained("cpu")
    with pytest.raises(ValueError, match="reads digit labels, not prompts"):
        pipe.encode_condition(prompts=["a 7"])


def test_sample_with_prompts_writes_prompts_and_labels_in_clip_order(text_run, tmp_path, capsys):
    run_dir, _ = text_run
    out = tmp_path / "out"
    assert cli.main(["sample", "--weights", str(run_dir), "--prompt", "a bold 7 moves left and right", "--n", "2",
                     "--out", str(out)]) == 0
    assert (out / "prompts.txt").read_text().splitlines() == ["a bold 7 moves left and right"] * 2
    assert np.load(out / "labels.npy").tolist() == [[7], [7]]
    listing = tmp_path / "prompts.txt"
    listing.write_text("the digit 3 moves up and down\n\n  a thin one  \nheading left\n")
    out2 = tmp_path / "out2"
    assert cli.main(["sample", "--weights", str(run_dir), "--prompts", str(listing), "--out", str(out2)]) == 0
    assert (out2 / "prompts.txt").read_text().splitlines() == ["the digit 3 moves up and down", "a thin one",
                                                               "heading left"]
    assert np.load(out2 / "labels.npy").tolist() == [[3], [1], [-1]]  # -1: the prompt names no digit
    assert np.load(out2 / "samples.npy").shape == (3, 4, 16, 16)


# ---------------------------------------------------------------- the shipped cpu-text model ----


def test_the_shipped_text_model_gives_finite_outputs_for_every_kind_of_prompt():
    pipe = LatentVideoPipeline.from_pretrained("cpu-text")
    assert pipe.reads_prompts and pipe.config.name == "cpu-text" and pipe.unet.cfg.pooled_context
    meanings = [captions.Meaning(3, "vertical", "up", "bold"), captions.Meaning(7, "diagonal", "down-left", "thin"),
                captions.Meaning(0), captions.Meaning(8, style="regular")]
    prompts = [captions.caption(m, t) for m in meanings for t in captions.TEMPLATES] + ["", "heading left", "a 5"]
    cond = pipe.encode_condition(prompts=prompts)  # (n, L) ids and mask
    z = torch.randn(len(prompts), pipe.unet.cfg.in_channels, pipe.config.num_frames, 8, 8,
                    generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for t in (999, 500, 1):
            out = pipe.unet(z, torch.full((len(prompts),), t), cond)
            assert out.shape == z.shape and torch.isfinite(out).all(), t
        # the prompt matters: two prompts of different digits give different predictions from the same noise
        same_noise = z[:1].expand(2, -1, -1, -1, -1)
        a, b = pipe.unet(same_noise, torch.full((2,), 500), {k: v[[0, len(captions.TEMPLATES)]] for k, v in cond.items()})
        assert (a - b).abs().mean() > 1e-3
