"""The caption grammar, the tokenizer, the text encoder, the tiny CLIP, and captions in the U-Net."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vdiff_edu import captions
from vdiff_edu.captions import (DIRECTIONS, HELD_OUT_TEMPLATES, MOTIONS, STYLES, TEMPLATES, TRAIN_TEMPLATES, WORDS,
                                Meaning, caption, direction_of, motion_family, parse, parse_all, split_words,
                                start_direction)
from vdiff_edu.conditioning import CaptionTokens, Conditioning
from vdiff_edu.text import (MAX_LOGIT_SCALE, TextEncoder, TextEncoderConfig, TinyCLIP, TinyClipConfig, Tokenizer,
                            clip_loss, meaning_groups, text_video_similarity, train_tiny_clip, zero_shot_accuracy,
                            zero_shot_by_attribute)

from vdiff_edu.digits import DigitSet
from vdiff_edu.moving_mnist import MOTIONS as DATA_MOTIONS, MovingMNIST, make_caption, motion_of, simulate_trajectory

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread

# a grid of meanings: every field value at least once, partial meanings (None) included
GRID = [Meaning(d, m, r, s) for d, m, r, s in itertools.product(
    (0, 3, 8), MOTIONS + (None,), ("up", "down-left", "right", None), STYLES + (None,))]
FULL_GRID = [Meaning(d, m, r, s) for d, m, r, s in itertools.product(
    range(10), MOTIONS + (None,), DIRECTIONS + (None,), STYLES + (None,))]


# ---------------------------------------------------------------- the caption grammar ----


def test_every_template_reads_back_to_its_meaning():
    for template in TEMPLATES:
        for m in GRID:
            text = caption(m, template)
            assert parse(text) == m, (template, text)
            assert captions.join_words(split_words(text)) == text  # canonical: lower-case, no space before ","


def test_several_digits_read_back_in_order():
    pairs = [(Meaning(3, "horizontal", "left", "bold"), Meaning(7, "vertical", "up", "thin")),
             (Meaning(8, None, "down-right", "regular"), Meaning(1, "diagonal", None, None), Meaning(5, style="bold"))]
    for template in TEMPLATES:
        for meanings in pairs:
            text = caption(meanings, template)
            assert parse_all(text) == meanings, (template, text)
    with pytest.raises(ValueError, match="describes 2 digits.*parse_all"):
        parse(caption(pairs[0], TEMPLATES[0]))


def test_todays_make_caption_wording_is_a_prompt_with_the_same_meaning():
    assert DATA_MOTIONS == MOTIONS
    for labels, motions in [([3], ["vertical"]), ([3, 7], ["horizontal", "vertical"]),
                            ([0, 8, 5], ["diagonal", "horizontal", "vertical"])]:
        text = make_caption(labels, motions)
        assert parse_all(text) == tuple(Meaning(d, m) for d, m in zip(labels, motions)), text
        assert caption([Meaning(d, m) for d, m in zip(labels, motions)], TRAIN_TEMPLATES[0]) == text
    assert caption(Meaning(3, "vertical"), TRAIN_TEMPLATES[0]) == "the digit 3 moves up and down"


def test_partial_and_empty_prompts():
    assert parse("a bold 8") == Meaning(8, style="bold")
    assert parse("the digit 8") == Meaning(8)
    assert parse("an eight") == Meaning(8)
    assert parse("heading up and left") == Meaning(direction="up-left")
    assert parse("") == parse("   ") == Meaning() and parse_all("") == ()
    assert caption(Meaning(8), TRAIN_TEMPLATES[1]) == "an eight"


def test_parse_names_what_it_cannot_read():
    with pytest.raises(ValueError, match=r"'bolt' \(closest: 'bold'"):
        parse("a bolt 8")
    with pytest.raises(ValueError, match="motion of one digit twice"):
        parse("the digit 3 moves up and down, bouncing horizontally")
    with pytest.raises(ValueError, match="names its digit"):
        caption(Meaning(style="bold"), TRAIN_TEMPLATES[0])
    with pytest.raises(ValueError, match="Meaning.motion must be one of"):
        Meaning(3, "sideways")


def test_held_out_templates_are_new_sentences_of_known_words():
    assert not set(TRAIN_TEMPLATES) & set(HELD_OUT_TEMPLATES) and len(HELD_OUT_TEMPLATES) >= 3
    train = {caption(m, t) for t in TRAIN_TEMPLATES for m in FULL_GRID if m.digit is not None}
    held = {caption(m, t) for t in HELD_OUT_TEMPLATES for m in FULL_GRID if m.digit is not None}
    assert not train & held  # no held-out caption is ever a training caption, for any meaning
    assert captions.TRAIN_WORDS == WORDS  # and every word of them is one training teaches


def test_words_are_exactly_what_the_grammar_can_say():
    said = set()
    for t in TEMPLATES:
        for m in FULL_GRID:
            said |= set(split_words(caption(m, t)))
        said |= set(split_words(caption([Meaning(1), Meaning(2), Meaning(3)], t)))  # "A, B and C"
    assert said == set(WORDS)


def test_a_random_template_is_a_training_template():
    rng = np.random.default_rng(0)
    texts = {caption(Meaning(4, "vertical"), rng=rng) for _ in range(200)}
    assert texts == {caption(Meaning(4, "vertical"), t) for t in TRAIN_TEMPLATES}


def test_direction_uses_image_coordinates_where_y_grows_down():
    assert direction_of(vx=1, vy=0) == "right" and direction_of(vx=-1, vy=0) == "left"
    assert direction_of(vx=0, vy=-1) == "up" and direction_of(vx=0, vy=1) == "down"
    assert direction_of(vx=1, vy=-1) == "up-right" and direction_of(vx=-1, vy=1) == "down-left"
    assert start_direction(np.array([[-2.0, 0.1], [5.0, 5.0]])) == "up"  # rows are (y, x); only the first counts
    with pytest.raises(ValueError, match="at rest"):
        direction_of(0, 0)


def test_direction_agrees_with_the_generators_motion_and_positions():
    rng = np.random.default_rng(0)
    for _ in range(300):
        positions, velocities, _ = simulate_trajectory(rng, num_frames=8, canvas=12.0, speed=1.8)
        direction = start_direction(velocities)
        assert motion_family(direction) == motion_of(velocities)  # deterministic rule: same thresholds
        dy, dx = positions[1] - positions[0]  # the first step, unless it hit a wall
        if not ({"up", "down"} & set(direction.split("-"))) and abs(dx) > 1e-9:
            assert ("right" in direction) == (dx > 0)
        if "up" in direction and positions[0, 0] > 2:
            assert dy < 0  # up is towards row 0


def test_meanings_of_a_moving_mnist_item():
    rng = np.random.default_rng(0)
    digits = DigitSet(images=rng.integers(0, 255, (10, 28, 28), dtype=np.uint8), labels=np.arange(10),
                      source="synthetic: test noise")
    ds = MovingMNIST(num_frames=8, image_size=32, digit_size=20, num_digits=2, length=4, digits=digits, verbose=False)
    item = ds[1]
    meanings = captions.meanings_of_item(item)
    assert [m.digit for m in meanings] == item["labels"].tolist()
    assert [m.motion for m in meanings] == [MOTIONS[i] for i in item["motions"]]
    assert [m.style for m in meanings] == ["regular", "regular"]  # the default style, which the caption leaves out
    assert parse_all(item["caption"]) == tuple(dataclasses.replace(m, direction=None, style=None) for m in meanings)


# ---------------------------------------------------------------- the tokenizer ----


def test_tokenizer_round_trip_on_every_template():
    tok = Tokenizer()
    assert tok.vocab[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"] and len(tok) == len(WORDS) + 4
    meanings = [Meaning(3, "vertical", "up", "bold"), Meaning(8, "diagonal", "down-left", None), Meaning(0)]
    for template in TEMPLATES:
        texts = [caption(m, template) for m in meanings] + [caption(meanings[:2], template)]
        ids, mask = tok.encode(texts, max_len=40)
        assert ids.shape == mask.shape == (len(texts), 40) and ids.dtype == torch.long and mask.dtype == torch.bool
        assert tok.decode(ids) == texts
        assert (ids[:, 0] == tok.bos_id).all() and (mask.sum(1) == torch.tensor([len(split_words(t)) + 2
                                                                                 for t in texts])).all()


def test_tokenizer_splits_punctuation_and_lower_cases():
    tok = Tokenizer()
    assert tok.tokenize("The Digit 3, going UP then down") == ["the", "digit", "3", ",", "going", "up", "then", "down"]
    ids, _ = tok.encode("3, going up then down")
    assert tok.decode(ids[0]) == "3, going up then down"


def test_unknown_words_are_named_with_suggestions_and_never_dropped():
    tok = Tokenizer()
    with pytest.raises(ValueError) as err:
        tok.encode(["a bolt three", "the digit 3 zigzags"])
    message = str(err.value)
    assert "'bolt' (closest: 'bold'" in message and "'zigzags'" in message and "on_unknown='unk'" in message
    with pytest.warns(UserWarning, match=r"mapped 2 unknown word\(s\) to <unk>: 'bolt'.*'zigzags'"):
        ids, mask = tok.encode(["a bolt three", "the digit 3 zigzags"], max_len=8, on_unknown="unk")
    assert mask.sum(1).tolist() == [5, 6]  # every word kept: <bos> + 3 or 4 words + <eos>
    assert tok.decode(ids) == ["a <unk> three", "the digit 3 <unk>"]
    with pytest.raises(ValueError, match="max_len=4"):
        tok.encode("the digit 3 moves up", max_len=4)


def test_the_empty_prompt_is_bos_eos_never_all_padding():
    tok = Tokenizer()
    for empty in ("", "   "):
        ids, mask = tok.encode([empty], max_len=6)
        assert ids.tolist() == [[tok.bos_id, tok.eos_id, 0, 0, 0, 0]]
        assert mask.tolist() == [[True, True, False, False, False, False]]
        assert tok.decode(ids) == [""]


# ---------------------------------------------------------------- the text encoder ----


def test_text_encoder_shapes_pooling_and_padding():
    tok, enc = Tokenizer(), TextEncoder(TextEncoderConfig.smoke()).eval()
    prompts = ["the bold digit 3 moves up and down", "", "a seven"]
    short, short_mask = tok.encode(prompts, max_len=10)
    long, long_mask = tok.encode(prompts, max_len=16)
    with torch.no_grad():
        tokens, pooled = enc(short, short_mask)
        tokens_long, pooled_long = enc(long, long_mask)
    assert tokens.shape == (3, 10, 32) and pooled.shape == (3, 32)
    torch.testing.assert_close(tokens_long[:, :10][short_mask], tokens[short_mask])  # real tokens: same features
    torch.testing.assert_close(pooled_long, pooled)
    torch.testing.assert_close(pooled[1], tokens[1, :2].mean(0))  # the mean of <bos> and <eos>
    assert not torch.allclose(pooled[0], pooled[2], atol=1e-3)
    with pytest.raises(ValueError, match="all padding"):
        enc(short, torch.zeros_like(short_mask))
    with pytest.raises(ValueError, match="max_len=20 positions"):
        enc(*tok.encode(prompts, max_len=24))


def test_the_presets_hold_every_caption_they_are_for():
    assert captions.longest_caption(1) + 2 <= TextEncoderConfig.cpu().max_len == TextEncoderConfig.smoke().max_len
    assert captions.longest_caption(2) + 2 <= TextEncoderConfig.gpu().max_len
    longest = max((caption(m, t) for t in TEMPLATES for m in FULL_GRID if m.digit is not None),
                  key=lambda c: len(split_words(c)))
    assert len(split_words(longest)) == captions.longest_caption(1)
    Tokenizer().encode(longest, max_len=TextEncoderConfig.cpu().max_len)  # fits


# ---------------------------------------------------------------- the CLIP loss ----


def test_clip_loss_by_hand_on_two_pairs():
    text = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # normalised: e₁, e₂
    video = torch.tensor([[3.0, 4.0], [0.0, -1.0]])  # normalised: (0.6, 0.8), (0, -1)
    logit_scale = torch.tensor(math.log(2.0))  # logits × 2
    logits = 2 * torch.tensor([[0.6, 0.8], [0.0, -1.0]])  # clip i · prompt j
    by_rows = -0.5 * (torch.log_softmax(logits, 1)[0, 0] + torch.log_softmax(logits, 1)[1, 1])
    by_cols = -0.5 * (torch.log_softmax(logits, 0)[0, 0] + torch.log_softmax(logits, 0)[1, 1])
    expected = 0.5 * (by_rows + by_cols)
    # with numbers: rows  −log(e^1.2 / (e^1.2 + e^1.6)) = 0.9130, −log(e^−2 / (e^0 + e^−2)) = 2.1269,
    #               columns −log(e^1.2 / (e^1.2 + e^0)) = 0.2633, −log(e^−2 / (e^1.6 + e^−2)) = 3.6270
    assert abs(expected.item() - 0.25 * (0.9130 + 2.1269 + 0.2633 + 3.6270)) < 1e-3
    torch.testing.assert_close(clip_loss(text, video, logit_scale), expected)
    torch.testing.assert_close(clip_loss(text, video, logit_scale, torch.eye(2)), expected)  # targets = the diagonal


def test_clip_loss_clamps_the_logit_scale_at_ln_100_and_counts_repeated_prompts():
    torch.manual_seed(0)
    text, video = torch.randn(4, 8), torch.randn(4, 8)
    torch.testing.assert_close(clip_loss(text, video, torch.tensor(9.0)), clip_loss(text, video, MAX_LOGIT_SCALE))
    assert clip_loss(text, video, 3.0) != clip_loss(text, video, 4.0)
    scale = torch.tensor(8.0, requires_grad=True)
    clip_loss(text, video, scale).backward()
    assert scale.grad == 0  # beyond the clamp the temperature stops learning, as CLIP's clipping does
    # pairs 0 and 1 say the same thing: each of those clips has two matching prompts, weighted ½ each
    targets = torch.tensor([[1.0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    logits = 4.0 * F.normalize(video, dim=1) @ F.normalize(text, dim=1).T  # (clips, prompts)
    soft = targets / targets.sum(1, keepdim=True)
    by_hand = 0.5 * (-(soft * logits.log_softmax(1)).sum(1).mean() - (soft * logits.log_softmax(0)).sum(0).mean())
    torch.testing.assert_close(clip_loss(text, video, math.log(4.0), targets), by_hand)
    assert clip_loss(text, video, math.log(4.0), targets) != clip_loss(text, video, math.log(4.0))


# ---------------------------------------------------------------- the tiny CLIP ----

DIRECTION_PROMPTS = ["the digit 1, heading right", "the digit 2, heading left", "the digit 3, heading down",
                     "the digit 4, heading up"]


def square_clips(n: int, seed: int = 0) -> tuple[torch.Tensor, list[int]]:
    """A 4×4 bright square crossing a 16×16 frame in 8 frames, right, left, down or up: (n, 1, 8, 16, 16)."""
    rng = np.random.default_rng(seed)
    clips, labels = -torch.ones(n, 1, 8, 16, 16), []
    steps = [(0, 1), (0, -1), (1, 0), (-1, 0)]  # (dy, dx) per frame
    for i in range(n):
        k = i % 4
        dy, dx = steps[k]
        y0 = int(rng.integers(0, 12)) if dy == 0 else (0 if dy > 0 else 11)
        x0 = int(rng.integers(0, 12)) if dx == 0 else (0 if dx > 0 else 11)
        for f in range(8):
            y, x = y0 + dy * (f * 11 // 7), x0 + dx * (f * 11 // 7)
            clips[i, 0, f, y:y + 4, x:x + 4] = 1.0
        labels.append(k)
    return clips, labels


def test_the_contrastive_loss_falls_and_the_clip_knows_directions():
    clips, labels = square_clips(32)
    prompts = [DIRECTION_PROMPTS[k] for k in labels]
    cfg = TinyClipConfig.smoke(batch_size=16, lr=3e-3, warmup=3)
    model, history = train_tiny_clip(clips, prompts, cfg, steps=40, device="cpu", seed=0)
    first, last = np.mean(history["loss"][:3]), np.mean(history["loss"][-5:])
    assert last < first - 0.5, (first, last)  # the optimum with 4 prompts per 16 pairs is ln 4 ≈ 1.39
    test_clips, test_labels = square_clips(16, seed=1)
    assert zero_shot_accuracy(model, test_clips, DIRECTION_PROMPTS, test_labels) >= 0.75  # chance: 0.25
    sims = text_video_similarity(model, test_clips, [DIRECTION_PROMPTS[k] for k in test_labels])
    wrong = text_video_similarity(model, test_clips, [DIRECTION_PROMPTS[(k + 1) % 4] for k in test_labels])
    assert sims.shape == (16,) and sims.mean() > wrong.mean()


class OneHotClip(torch.nn.Module):
    """A CLIP that cannot be wrong: clip i's embedding is one-hot at its pixel [0, 0, 0, 0]; prompt j's at j."""

    def __init__(self, prompts):
        super().__init__()
        self.prompts = list(prompts)

    def encode_text(self, prompts):
        return F.one_hot(torch.tensor([self.prompts.index(p) for p in prompts]), len(self.prompts)).float()

    def encode_video(self, clips):
        return F.one_hot(clips[:, 0, 0, 0, 0].long(), len(self.prompts)).float()


def test_zero_shot_accuracy_is_one_when_right_and_fails_when_shuffled():
    prompts = ["a zero", "a one", "a two", "a three", "a four"]
    truth = torch.arange(20) % 5
    clips = truth.float().reshape(20, 1, 1, 1, 1).expand(20, 1, 2, 2, 2)
    model = OneHotClip(prompts)
    assert zero_shot_accuracy(model, clips, prompts, truth) == 1.0
    shuffled = truth[torch.randperm(20, generator=torch.Generator().manual_seed(0))]
    assert zero_shot_accuracy(model, clips, prompts, shuffled) == (shuffled == truth).float().mean().item() < 0.5
    assert zero_shot_accuracy(model, clips, prompts, (truth + 1) % 5) == 0.0
    with pytest.raises(ValueError, match="one true_index per clip"):
        zero_shot_accuracy(model, clips, prompts, truth[:3])


class DigitReadingClip:
    """Reads only the digit: a clip's digit is its first pixel × 10, a prompt's is what parse finds (else -1)."""

    def encode_text(self, prompts):
        from vdiff_edu.captions import parse
        digits = torch.tensor([parse(p).digit for p in prompts])
        return F.one_hot(digits, 10).float()

    def encode_video(self, clips):
        return F.one_hot((clips[:, 0, 0, 0, 0] * 10).round().long(), 10).float()


def test_zero_shot_by_attribute_reads_each_attribute_with_its_own_candidates():
    from vdiff_edu.captions import Meaning
    meanings = [Meaning(d, m, dr, s) for d, m, dr, s in [(3, "vertical", "up", "bold"), (7, "horizontal", "left", "thin"),
                                                       (3, "diagonal", "up-left", "regular"), (0, "vertical", "down", "thin")]]
    clips = torch.tensor([m.digit / 10 for m in meanings]).reshape(4, 1, 1, 1, 1).expand(4, 1, 2, 2, 2)
    scores = zero_shot_by_attribute(DigitReadingClip(), clips, meanings)
    assert set(scores) == {"digit", "motion", "direction", "style"}
    assert scores["digit"] == 1.0  # it reads the digit
    # the other attributes' candidates all name the clip's own digit: this model cannot tell them apart, and its
    # argmax over equal scores is the first candidate, so it is right only where the first value is the truth
    assert scores["motion"] == 0.25 and scores["style"] == 0.5  # MOTIONS[0] horizontal: 1 of 4; STYLES[0] thin: 2
    assert scores["direction"] == 0.0  # DIRECTIONS[0] right: none
    wrong = [Meaning((m.digit + 1) % 10, m.motion, m.direction, m.style) for m in meanings]
    assert zero_shot_by_attribute(DigitReadingClip(), clips, wrong)["digit"] == 0.0
    with pytest.raises(ValueError, match="one Meaning per clip"):
        zero_shot_by_attribute(DigitReadingClip(), clips, meanings[:2])


def test_meaning_groups_match_paraphrases_not_other_meanings():
    prompts = [caption(Meaning(3, "vertical"), TRAIN_TEMPLATES[0]), caption(Meaning(3, "vertical"), TRAIN_TEMPLATES[1]),
               caption(Meaning(3, "horizontal"), TRAIN_TEMPLATES[0]), "a zigzag", "a zigzag"]
    assert meaning_groups(prompts).tolist() == [0, 0, 1, 2, 2]


def test_tiny_clip_checks_its_vocabulary():
    with pytest.raises(ValueError, match="vocab_size=10 differs"):
        TinyCLIP(TinyClipConfig.smoke(text=TextEncoderConfig.smoke(vocab_size=10)))


# ---------------------------------------------------------------- captions in the U-Net ----


from test_conditioning import perturbed_unet  # noqa: E402  (a smoke U-Net in which every input matters)


def caption_kind(max_len=16, train_encoder=False):
    torch.manual_seed(1)
    return CaptionTokens(Tokenizer(), TextEncoder(TextEncoderConfig.smoke()), max_len=max_len,
                         train_encoder=train_encoder)


def test_the_empty_prompt_gives_finite_unet_outputs():
    kind = caption_kind()
    unet = perturbed_unet(context_dim=32)
    cond = kind.from_batch({"caption": ["", "a bold three bouncing vertically"]})
    null = kind.null(cond)
    assert null["context_mask"].tolist() == [[True, True] + [False] * 14] * 2
    x, t = torch.randn(2, 4, 4, 8, 8), torch.tensor([10, 900])
    with torch.no_grad():
        out = unet(x, t, cond)
        torch.testing.assert_close(unet(x, t, null)[0], out[0])  # "" in a batch is the null caption
    assert torch.isfinite(out).all()


def test_unet_output_depends_on_the_caption_not_on_the_padding():
    unet = perturbed_unet(context_dim=32)
    x, t = torch.randn(2, 4, 4, 8, 8), torch.tensor([10, 900])
    prompts = {"caption": ["the digit 3, heading up", "a thick eight bouncing vertically"]}  # 8 and 7 tokens
    with torch.no_grad():
        short = unet(x, t, caption_kind(max_len=8).from_batch(prompts))
        padded = unet(x, t, caption_kind(max_len=16).from_batch(prompts))
        other = unet(x, t, caption_kind().from_batch({"caption": ["the digit 7 moves left and right"] * 2}))
        none = unet(x, t, None)
    torch.testing.assert_close(short, padded, atol=1e-5, rtol=1e-5)
    assert (short - other).abs().amax(dim=(1, 2, 3, 4)).min() > 1e-4  # each clip changes with its caption
    assert (short - none).abs().max() > 1e-4


def test_caption_kind_reads_prompts_or_cached_ids():
    kind = caption_kind()
    prompts = ["the digit 3 moves up and down", "an eight"]
    entries = kind.cache_entries({"caption": prompts})
    assert set(entries) == {"caption_ids", "caption_mask"} and entries["caption_ids"].shape == (2, 16)
    from_ids = kind.from_batch(entries)
    from_text = kind.from_batch({"caption": prompts})
    torch.testing.assert_close(from_ids["context"], from_text["context"])
    assert from_ids["context"].shape == (2, 16, 32) and not from_ids["context"].requires_grad
    with pytest.raises(KeyError, match="'caption' \\(a list of prompts\\) or 'caption_ids'"):
        kind.from_batch({"labels": torch.zeros(2, 1)})
    conditioning = Conditioning([kind])
    assert set(conditioning.cache_entries({"caption": prompts})) == {"caption_ids", "caption_mask"}  # the set asks the kind
    dropped = conditioning.drop(from_text, {"caption": torch.tensor([True, False])})
    torch.testing.assert_close(dropped["context"][0], kind.null(from_text)["context"][0])
    torch.testing.assert_close(dropped["context"][1], from_text["context"][1])


def test_a_caption_kind_trained_jointly_passes_gradients_to_the_encoder():
    for train_encoder in (False, True):
        kind = caption_kind(train_encoder=train_encoder)
        cond = kind.from_batch({"caption": ["a bold three"]})
        assert cond["context"].requires_grad == train_encoder
        if train_encoder:
            cond["context"].sum().backward()
            assert kind.text_encoder.token_embed.weight.grad.abs().sum() > 0
