"""Conditions: batching, dropout, null values, guidance with one scale per kind, and a new kind that plugs in
without touching the Trainer or the samplers."""

from __future__ import annotations

import pytest
import torch

from vdiff_edu.conditioning import ConditionKind, Conditioning, DigitLabels, cat_conditions
from vdiff_edu.sampling import guided_prediction, sample
from vdiff_edu.schedule import NoiseSchedule
from vdiff_edu.train import TrainConfig, Trainer
from vdiff_edu.unet import UNet3D, UNetConfig

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


# ---------------------------------------------------------------- two kinds a later issue will bring, defined here


class FirstFrameGiven(ConditionKind):
    """The clip's first latent frame, repeated over the frames, plus a mask channel: concatenated to x."""

    name, route, unet_keys = "first_frame", "channels", ("frames",)

    def from_batch(self, batch, device=None):
        z = torch.as_tensor(batch["latents"]).to(device)  # (b, c, f, h, w)
        first = z[:, :, :1].expand_as(z)  # (b, c, f, h, w)
        mask = torch.ones_like(z[:, :1])  # (b, 1, f, h, w)
        return {"frames": torch.cat([first, mask], dim=1)}  # (b, c + 1, f, h, w)

    def null(self, entries):
        return {"frames": torch.zeros_like(entries["frames"])}  # no frame given, mask 0


class WordTokens(ConditionKind):
    """Stand-in for caption features: a (b, L, d) context read by cross-attention, with its padding mask."""

    name, route, unet_keys = "caption", "cross_attention", ("context", "context_mask")

    def from_batch(self, batch, device=None):
        ids = torch.as_tensor(batch["tokens"]).to(device)  # (b, L), 0 = padding
        context = torch.nn.functional.one_hot(ids, 6).float()  # (b, L, 6)
        return {"context": context, "context_mask": ids > 0}

    def null(self, entries):  # an empty prompt: every token padding (cross-attention must stay finite)
        return {"context": torch.zeros_like(entries["context"]), "context_mask": torch.zeros_like(entries["context_mask"])}


def perturbed_unet(**overrides) -> UNet3D:
    """A smoke U-Net whose zero-initialised layers are given small random weights, so every input matters."""
    torch.manual_seed(0)
    unet = UNet3D(UNetConfig.smoke(**overrides))
    with torch.no_grad():
        for p in unet.parameters():
            if p.abs().max() == 0:
                p.normal_(0, 0.05)
    return unet.eval()


# ---------------------------------------------------------------- digit labels ----


def test_for_unet_knows_what_the_config_asks_for():
    assert Conditioning.for_unet(UNetConfig.smoke()).names == ["labels"]
    assert Conditioning.for_unet(UNetConfig.smoke(num_label_slots=0)).names == []
    labels = Conditioning.for_unet(UNetConfig.smoke(num_label_slots=2), drop_prob=0.3).kind("labels")
    assert (labels.num_slots, labels.null_index, labels.drop_prob) == (2, 10, 0.3)
    with pytest.raises(KeyError, match="conditioned on \\['labels'\\]"):
        Conditioning.for_unet(UNetConfig.smoke()).kind("caption")


def test_labels_batch_drop_and_null_by_hand():
    conditioning = Conditioning([DigitLabels(num_classes=10, num_slots=2)])
    cond = conditioning.from_batch({"labels": torch.tensor([[1, 2], [3, 4], [5, 6]]), "caption": ["a", "b", "c"]})
    assert set(cond) == {"labels"} and cond["labels"].dtype == torch.long
    dropped = conditioning.drop(cond, {"labels": torch.tensor([False, True, False])})
    assert dropped["labels"].tolist() == [[1, 2], [10, 10], [5, 6]]
    assert conditioning.null(cond)["labels"].tolist() == [[10, 10]] * 3
    assert cond["labels"].tolist() == [[1, 2], [3, 4], [5, 6]]  # nothing changed in place
    with pytest.raises(ValueError, match=r"\[0, 10\]"):
        conditioning.from_batch({"labels": torch.tensor([[1, 11]])})
    with pytest.raises(KeyError, match="needs 'labels'"):
        conditioning.from_batch({"video": torch.zeros(1)})


def test_dropout_masks_are_one_global_draw_cut_into_shares():
    conditioning = Conditioning([DigitLabels(drop_prob=0.5), FirstFrameGiven(drop_prob=0.2)])
    full = conditioning.draw_drops(8, torch.Generator().manual_seed(3))
    first = conditioning.draw_drops(8, torch.Generator().manual_seed(3), rows=slice(0, 4))
    second = conditioning.draw_drops(8, torch.Generator().manual_seed(3), rows=slice(4, 8))
    for name in ("labels", "first_frame"):
        assert torch.equal(torch.cat([first[name], second[name]]), full[name])
    many = Conditioning([DigitLabels(drop_prob=0.25)]).draw_drops(20_000, torch.Generator().manual_seed(0))
    assert abs(many["labels"].float().mean().item() - 0.25) < 0.01


def test_null_keeps_conditions_that_are_never_dropped():
    conditioning = Conditioning([DigitLabels(drop_prob=0.1), FirstFrameGiven(drop_prob=0.0)])
    cond = conditioning.from_batch({"labels": torch.tensor([[4]]), "latents": torch.randn(1, 4, 3, 4, 4)})
    null = conditioning.null(cond)
    assert null["labels"].tolist() == [[10]]
    assert torch.equal(null["frames"], cond["frames"])  # given frames stay in the unconditional branch


def test_bad_definitions_and_stacks_are_refused():
    with pytest.raises(ValueError, match="drop_prob must be in"):
        DigitLabels(drop_prob=1.0)
    with pytest.raises(ValueError, match="once"):
        Conditioning([DigitLabels(), DigitLabels()])
    with pytest.raises(ValueError, match="same keys"):
        cat_conditions([{"labels": torch.zeros(1, 1)}, {"frames": torch.zeros(1, 1)}])


# ---------------------------------------------------------------- guidance, one scale per kind ----


def test_equal_scales_are_plain_guidance_and_scale_one_is_one_pass():
    unet = perturbed_unet()
    x, t = torch.randn(2, 4, 4, 8, 8), torch.tensor([50, 700])
    cond = {"labels": torch.tensor([[3], [7]])}
    null = {"labels": torch.tensor([[10], [10]])}
    with torch.no_grad():
        expected = unet(x, t, null) + 2.5 * (unet(x, t, cond) - unet(x, t, null))  # Ho & Salimans 2022, eq. 6
        torch.testing.assert_close(guided_prediction(unet, x, t, cond, 2.5), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(guided_prediction(unet, x, t, cond, {"labels": 2.5}), expected, atol=1e-5, rtol=1e-5)
        assert torch.equal(guided_prediction(unet, x, t, cond, 1.0), unet(x, t, cond))
    with pytest.raises(ValueError, match="guidance_scale names \\['lables'\\]"):
        guided_prediction(unet, x, t, cond, {"lables": 2.0})


def test_two_scales_add_one_condition_at_a_time():
    """InstructPix2Pix eq. 3: out(∅) + s₁·(out(c₁) − out(∅)) + s₂·(out(c₁, c₂) − out(c₁)), computed by hand."""
    unet = perturbed_unet(cond_channels=5)
    conditioning = Conditioning([DigitLabels(drop_prob=0.1), FirstFrameGiven(drop_prob=0.1)])
    x, t = torch.randn(2, 4, 4, 8, 8), torch.tensor([50, 700])
    cond = conditioning.from_batch({"labels": torch.tensor([[3], [7]]), "latents": torch.randn(2, 4, 4, 8, 8)})
    none = conditioning.null(cond)
    labels_only = conditioning.null(cond, ["first_frame"])
    with torch.no_grad():
        e0, e1, e2 = unet(x, t, none), unet(x, t, labels_only), unet(x, t, cond)
        expected = e0 + 2.0 * (e1 - e0) + 4.0 * (e2 - e1)
        got = guided_prediction(unet, x, t, cond, {"labels": 2.0, "first_frame": 4.0}, conditioning)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(got, e0 + 3.0 * (e2 - e0), atol=1e-4)  # not the single-scale answer


def test_a_null_caption_gives_finite_predictions_and_samples():
    unet = perturbed_unet(context_dim=6)
    conditioning = Conditioning([DigitLabels(), WordTokens()])
    cond = conditioning.from_batch({"labels": torch.tensor([[3], [7]]), "tokens": torch.tensor([[1, 4, 0], [2, 0, 0]])})
    x, t = torch.randn(2, 4, 4, 8, 8), torch.tensor([50, 700])
    with torch.no_grad():
        assert torch.isfinite(unet(x, t, conditioning.null(cond))).all()
    clips = sample(unet, NoiseSchedule(), (2, 4, 4, 8, 8), cond, sampler="ddim", steps=3,
                   guidance_scale={"labels": 2.0, "caption": 3.0}, conditioning=conditioning,
                   generator=torch.Generator().manual_seed(0))
    assert clips.shape == (2, 4, 4, 8, 8) and torch.isfinite(clips).all()


# ---------------------------------------------------------------- a new kind plugs into the Trainer ----


def test_a_new_kind_trains_and_samples_without_editing_the_trainer_or_samplers():
    torch.manual_seed(0)
    data = {"latents": torch.randn(16, 4, 4, 8, 8), "labels": torch.randint(0, 10, (16, 1))}
    conditioning = Conditioning([DigitLabels(drop_prob=0.5), FirstFrameGiven(drop_prob=0.5)])
    unet = UNet3D(UNetConfig.smoke(cond_channels=5))
    seen = []
    unet.register_forward_pre_hook(lambda module, args: seen.append(args[2]))
    trainer = Trainer(unet, NoiseSchedule(), data, TrainConfig(steps=3, batch_size=8, warmup=1, progress="none",
                                                                checkpoint_every=0, seed=1),
                      device="cpu", conditioning=conditioning)
    trainer.train()
    assert trainer.step == 3 and all(torch.isfinite(torch.tensor(trainer.history["loss"])))
    assert all(set(c) == {"labels", "frames"} for c in seen)
    # dropout reached both kinds: some rows nulled, some kept, each kind on its own
    frames_dropped = torch.cat([(c["frames"].flatten(1).abs().sum(1) == 0) for c in seen])
    labels_dropped = torch.cat([(c["labels"][:, 0] == 10) for c in seen])
    assert 0 < frames_dropped.sum() < len(frames_dropped) and 0 < labels_dropped.sum() < len(labels_dropped)
    assert not torch.equal(frames_dropped, labels_dropped)
    # and it samples, with a scale for each kind
    cond = conditioning.from_batch({"labels": data["labels"][:2], "latents": data["latents"][:2]})
    clips = sample(trainer.ema.model, NoiseSchedule(), (2, 4, 4, 8, 8), cond, steps=2,
                   guidance_scale={"labels": 3.0, "first_frame": 1.5}, conditioning=conditioning,
                   generator=torch.Generator().manual_seed(0))
    assert clips.shape == (2, 4, 4, 8, 8) and torch.isfinite(clips).all()
    # what the latent cache would store for these clips
    entries = conditioning.cache_entries({"labels": data["labels"][:2], "latents": data["latents"][:2]})
    assert set(entries) == {"labels", "frames"} and entries["frames"].shape == (2, 5, 4, 8, 8)


# ---------------------------------------------------------------- captions through the text encoder ----


def test_captions_train_from_cached_ids_and_guide_sampling():
    from vdiff_edu.conditioning import CaptionTokens
    from vdiff_edu.text import TextEncoder, TextEncoderConfig, Tokenizer

    torch.manual_seed(0)
    tokenizer, encoder = Tokenizer(), TextEncoder(TextEncoderConfig.smoke())
    captions = CaptionTokens(tokenizer, encoder, drop_prob=0.5)
    conditioning = Conditioning([DigitLabels(drop_prob=0.2), captions])
    prompts = ["the digit 3 moves up and down", "a bold seven", "", "an eight bouncing diagonally"] * 4
    cached = captions.cache_entries({"caption": prompts})  # ids, not features: the encoder may go on training
    data = {"latents": torch.randn(16, 4, 4, 8, 8), "labels": torch.randint(0, 10, (16, 1)), **cached}
    unet = UNet3D(UNetConfig.smoke(context_dim=encoder.cfg.width))
    seen = []
    unet.register_forward_pre_hook(lambda module, args: seen.append(args[2]))
    trainer = Trainer(unet, NoiseSchedule(), data, TrainConfig(steps=2, batch_size=8, warmup=1, progress="none",
                                                                checkpoint_every=0, seed=1),
                      device="cpu", conditioning=conditioning)
    trainer.train()
    assert trainer.step == 2 and all(torch.isfinite(torch.tensor(trainer.history["loss"])))
    assert all(set(c) == {"labels", "context", "context_mask"} for c in seen)
    null_rows = torch.cat([c["context_mask"].sum(1) == 2 for c in seen])  # <bos> <eos>: dropped, or the prompt ""
    assert 0 < null_rows.sum() < len(null_rows) and all(c["context_mask"].any(1).all() for c in seen)
    cond = conditioning.from_batch({"labels": torch.tensor([[3], [7]]), "caption": prompts[:2]})
    clips = sample(trainer.ema.model, NoiseSchedule(), (2, 4, 4, 8, 8), cond, steps=2,
                   guidance_scale={"labels": 2.0, "caption": 4.0}, conditioning=conditioning,
                   generator=torch.Generator().manual_seed(0))
    assert clips.shape == (2, 4, 4, 8, 8) and torch.isfinite(clips).all()
