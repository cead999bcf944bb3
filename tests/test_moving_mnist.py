"""The Moving MNIST generator: trajectories under both rule sets, rendering, captions, determinism, splits.

Every dataset here gets its digits handed in (``digits=``, random blocks), so nothing is loaded or downloaded;
where the digits come from is tested in ``test_digits.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vdiff_edu import moving_mnist as mm
from vdiff_edu.digits import DigitSet
from vdiff_edu.moving_mnist import (MOTIONS, MovingMNIST, make_caption, make_clips, motion_of, render_clip,
                                    simulate_trajectory)
from vdiff_edu.utils import from_uint8, to_uint8

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


# ------------------------------------------------------------------------------------------------ helpers ----


def block_digits(n: int = 40, seed: int = 0) -> DigitSet:
    """Quick stand-in digits: random ink (every image distinct, with certainty), labels 0..9 in turn."""
    images = np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    return DigitSet(images, (np.arange(n) % 10).astype(np.int64), "synthetic: test blocks")


TRAIN_DIGITS, TEST_DIGITS = block_digits(60, seed=1), block_digits(30, seed=2)


def small_ds(**kw) -> MovingMNIST:
    args = dict(num_frames=12, image_size=40, num_digits=2, digit_size=16, length=64, verbose=False)
    args.update(kw)
    args.setdefault("digits", TRAIN_DIGITS if args.get("split", "train") == "train" else TEST_DIGITS)
    return MovingMNIST(**args)



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
    pixels = [mm.resize_digit(TRAIN_DIGITS.images[k], 16) for k in item["digit_ids"].tolist()]
    expected = render_clip(pixels, item["positions"].double().numpy(), 40, "deterministic") * 2 - 1
    torch.testing.assert_close(item["video"][0], torch.from_numpy(expected), atol=1e-6, rtol=0)


@pytest.mark.parametrize("rule", mm.RULES)
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


@pytest.mark.parametrize("rule", mm.RULES)
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
    small = mm.resize_digit(TRAIN_DIGITS.images[0], 20)
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


# ------------------------------------------------------------------------ styles, directions (issue 10) ----

# Pinned before styles existed: the default styles=("regular",) must leave every clip and caption bit-identical.
PINNED = [
    ("train", "deterministic", 0, -13148.58021080494,
     "the digit 1 moves left and right and the digit 3 moves up and down"),
    ("train", "stochastic", 5, -13264.933222651482, "the digit 1 moves left and right and the digit 1 moves diagonally"),
    ("test", "deterministic", 5, -14147.866509914398, "the digit 4 moves diagonally and the digit 3 moves up and down"),
    ("test", "stochastic", 0, -13263.10574132204, "the digit 5 moves diagonally and the digit 6 moves diagonally"),
]


@pytest.mark.parametrize("split, rule, index, total, text", PINNED)
def test_default_styles_leave_clips_and_captions_unchanged(split, rule, index, total, text):
    item = small_ds(split=split, rule=rule)[index]
    assert float(item["video"].double().sum()) == total and item["caption"] == text
    assert item["styles"].tolist() == [1, 1]  # STYLES.index("regular")


def test_styles_change_stroke_width_thin_regular_bold():
    from vdiff_edu.captions import STYLES
    from vdiff_edu.moving_mnist import resize_digit, stroke_style

    digit = resize_digit(TRAIN_DIGITS.images[0], 16)
    mass = [stroke_style(digit, s).sum() for s in STYLES]  # thin, regular, bold
    assert mass[0] < mass[1] < mass[2]
    ds = small_ds(styles=STYLES, length=30)
    seen = {int(s) for i in range(len(ds)) for s in ds[i]["styles"]}
    assert seen == {0, 1, 2}
    bold = next(ds[i] for i in range(len(ds)) if ds[i]["styles"][0] == 2)
    assert bold["caption"].startswith(f"the bold digit {int(bold['labels'][0])} ")


def test_stroke_styles_by_hand_erosion_and_dilation_by_the_cross():
    from vdiff_edu.moving_mnist import stroke_style

    plus = np.zeros((5, 5), np.float32)
    plus[2, 1:4] = plus[1:4, 2] = 1.0  # a plus sign: the centre has all four neighbours, no diagonal one
    thin = stroke_style(plus, "thin")
    assert thin.sum() == 1.0 and thin[2, 2] == 1.0  # the 3×3 square would have eroded the centre too
    dot = np.zeros((5, 5), np.float32)
    dot[2, 2] = 0.5
    bold = stroke_style(dot, "bold")
    assert bold.sum() == 5 * 0.5 and (bold == 0.5 * plus).all()  # a dot dilates into a plus, not a square
    edge = np.ones((3, 3), np.float32)  # outside the image counts as background
    assert stroke_style(edge, "thin").tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]
    assert stroke_style(plus, "regular") is plus


def test_directions_match_captions_start_direction_and_meanings():
    from vdiff_edu import captions

    ds = small_ds(styles=captions.STYLES, length=20)
    for i in range(len(ds)):
        item = ds[i]
        for k in range(ds.num_digits):
            assert captions.DIRECTIONS[int(item["directions"][k])] == captions.start_direction(item["velocities"][:, k])
        meanings = captions.meanings_of_item(item)
        assert [m.style for m in meanings] == [captions.STYLES[int(s)] for s in item["styles"]]
        assert all(captions.motion_family(m.direction) == m.motion for m in meanings)  # deterministic rule


def test_digit_style_holdout_never_in_train_and_alone_in_holdout():
    from vdiff_edu.captions import STYLES

    held = {(3, "vertical"), (7, "bold"), (1, "bold"), (2, "thin")}
    train = small_ds(holdout=held, styles=STYLES, length=80)
    for i in range(len(train)):
        item = train[i]
        for d, m, s in zip(item["labels"].tolist(), item["motions"].tolist(), item["styles"].tolist()):
            assert (d, MOTIONS[m]) not in held and (d, STYLES[s]) not in held
    alone = small_ds(split="holdout", holdout=held, styles=STYLES, length=30)
    seen = set()
    for i in range(len(alone)):
        item = alone[i]
        for d, m, s in zip(item["labels"].tolist(), item["motions"].tolist(), item["styles"].tolist()):
            pair = {(d, MOTIONS[m]), (d, STYLES[s])} & held
            assert pair
            seen |= pair
    assert {(7, "bold"), (3, "vertical")} <= seen
    with pytest.raises(ValueError, match="styles this dataset never draws"):
        small_ds(split="holdout", holdout={(7, "bold")})
    with pytest.raises(ValueError, match="holdout motion or style"):
        small_ds(holdout={(7, "heavy")})
