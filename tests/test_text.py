"""The caption grammar: captions and templates, reading prompts back, directions from velocities."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from vdiff_edu import captions
from vdiff_edu.captions import (DIRECTIONS, HELD_OUT_TEMPLATES, MOTIONS, STYLES, TEMPLATES, TRAIN_TEMPLATES, WORDS,
                                Meaning, caption, direction_of, motion_family, parse, parse_all, split_words,
                                start_direction)

try:  # the generator's module: data.py today, moving_mnist.py once data.py is split
    from vdiff_edu.moving_mnist import MOTIONS as DATA_MOTIONS, DigitSet, MovingMNIST, make_caption, motion_of
    from vdiff_edu.moving_mnist import simulate_trajectory
except ImportError:
    from vdiff_edu.data import MOTIONS as DATA_MOTIONS, DigitSet, MovingMNIST, make_caption, motion_of
    from vdiff_edu.data import simulate_trajectory

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
    assert parse_all(item["caption"]) == tuple(dataclasses.replace(m, direction=None) for m in meanings)
