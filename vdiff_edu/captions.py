"""The caption grammar: everything a prompt can say about a Moving MNIST clip, how to say it, and how to read it back.

A clip of bouncing digits has little to describe, and this module names all of it. For each digit, a **Meaning**:

    digit       0 … 9                                     "3", "three"
    motion      MOTIONS: horizontal, vertical, diagonal   "moves up and down", "bouncing vertically", "up then down"
    direction   DIRECTIONS: where it travels at the start "heading up and left", "towards the top left"
                right, up-right, up, up-left, left, down-left, down, down-right
    style       STYLES: the stroke                        "bold", "thick"; "thin", "slender"; "regular", "plain"

Any field may be None: the prompt does not say. ``caption`` renders a Meaning with one of several **templates**
(paraphrases), ``parse`` reads any prompt the grammar can produce back into the Meaning it came from:

    m = Meaning(digit=3, motion="vertical")
    caption(m, TRAIN_TEMPLATES[0])          # "the digit 3 moves up and down"   (the wording of data.make_caption)
    caption(m, TRAIN_TEMPLATES[1])          # "a three bouncing vertically"
    parse("a bold 8")                       # Meaning(digit=8, motion=None, direction=None, style='bold')

The templates are split once into ``TRAIN_TEMPLATES`` (the captions a model is trained on) and
``HELD_OUT_TEMPLATES`` (new phrasings, made only of words the training templates use, kept for testing whether a
text encoder understands a sentence it never saw). ``WORDS`` lists every word the grammar can produce: the
tokenizer's vocabulary (``text.py``).

Two rules make a prompt with several digits unambiguous, as in English: a style word comes *before* its digit
("the bold digit 3"), a motion or direction *after* it ("... 3 moves up and down"). Clauses are joined as
``data.make_caption`` joins them: "A and B", "A, B and C".

This module imports nothing from the rest of the package (the Moving MNIST generator can use it, not the
other way round); its motion names and velocity convention are those of ``data.py``, and the tests check it.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

# ----------------------------------------------------------------------------- 1. what a prompt can say

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MOTIONS = ("horizontal", "vertical", "diagonal")  # the names of data.MOTIONS, in the same order
DIRECTIONS = ("right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right")  # counter-clockwise
STYLES = ("thin", "regular", "bold")

# The angle thresholds of data.motion_of: the angle of (|v_x|, |v_y|) below 30° is horizontal, above 60° vertical,
# between them diagonal. Directions use the same thresholds, so under the deterministic rule (where bounces flip
# signs but keep |v_x| and |v_y|) a "horizontal" digit always starts "left" or "right", never "up-left".
HORIZONTAL_BELOW_DEG, VERTICAL_ABOVE_DEG = 30.0, 60.0


@dataclass(frozen=True)
class Meaning:
    """What a prompt says about one digit; None = it does not say."""

    digit: int | None = None  # 0 … 9
    motion: str | None = None  # one of MOTIONS
    direction: str | None = None  # one of DIRECTIONS: the direction of travel at the first frame
    style: str | None = None  # one of STYLES: the stroke width

    def __post_init__(self):
        if self.digit is not None:
            is_int = isinstance(self.digit, (int, np.integer)) and not isinstance(self.digit, bool)
            if not is_int or not 0 <= self.digit <= 9:
                raise ValueError(f"Meaning.digit must be an integer 0 … 9 or None; got {self.digit!r}")
            object.__setattr__(self, "digit", int(self.digit))
        for name, choices in (("motion", MOTIONS), ("direction", DIRECTIONS), ("style", STYLES)):
            value = getattr(self, name)
            if value is not None and value not in choices:
                raise ValueError(f"Meaning.{name} must be one of {choices} or None; got {value!r}")


# ----------------------------------------------------------------------------- 2. direction from a velocity


def direction_of(vx: float, vy: float) -> str:
    """The ``DIRECTIONS`` word of a velocity, in image coordinates: x grows to the right, y grows *down* (row
    index), as in ``data.simulate_trajectory``, so ``vy < 0`` is up.

        angle = atan2(|vy|, |vx|):  < 30° → left / right,  > 60° → up / down,  else the diagonal of the signs
    """
    if vx == 0 and vy == 0:
        raise ValueError("a digit at rest (vx = vy = 0) has no direction of travel; pass a non-zero velocity")
    angle = math.degrees(math.atan2(abs(vy), abs(vx)))  # 0° = horizontal, 90° = vertical
    horizontal = "right" if vx > 0 else "left"
    vertical = "down" if vy > 0 else "up"  # y grows downwards
    if angle < HORIZONTAL_BELOW_DEG:
        return horizontal
    if angle > VERTICAL_ABOVE_DEG:
        return vertical
    return f"{vertical}-{horizontal}"


def start_direction(velocities) -> str:
    """The direction of travel at the start of one digit's path: ``velocities (f, 2)`` stored (y, x) as
    ``MovingMNIST`` stores them (``item["velocities"][:, k]`` for digit k); only the first frame is read."""
    v = np.asarray(velocities, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 2:
        raise ValueError(f"velocities must have shape (f, 2) = (frames, (y, x)), got {v.shape}; "
                         f"for digit k of a MovingMNIST item pass item['velocities'][:, k]")
    vy, vx = v[0]  # (y, x) order, as data.simulate_trajectory writes it
    return direction_of(vx, vy)


def motion_family(direction: str) -> str:
    """The motion a direction belongs to: left/right → horizontal, up/down → vertical, the rest → diagonal."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}; got {direction!r}")
    return "horizontal" if direction in ("left", "right") else "vertical" if direction in ("up", "down") else "diagonal"


def meanings_of_item(item: dict) -> tuple[Meaning, ...]:
    """The Meaning of every digit of a ``MovingMNIST`` item: its label, its motion, its start direction (the item's
    ``directions``, else read from its velocities) and its style (the item's ``styles``; None when it has none).
    A text recipe paraphrases these: ``caption(meanings_of_item(item), rng=rng)`` draws a training template."""
    labels = np.asarray(item["labels"]).reshape(-1)  # (num_digits,)
    motions = np.asarray(item["motions"]).reshape(-1)  # (num_digits,) index into MOTIONS
    if "directions" in item:
        directions = [DIRECTIONS[int(r)] for r in np.asarray(item["directions"]).reshape(-1)]  # (num_digits,)
    else:
        velocities = np.asarray(item["velocities"])  # (f, num_digits, 2)
        directions = [start_direction(velocities[:, k]) for k in range(len(labels))]
    styles = ([STYLES[int(s)] for s in np.asarray(item["styles"]).reshape(-1)] if "styles" in item
              else [None] * len(labels))  # (num_digits,)
    return tuple(Meaning(int(d), MOTIONS[int(m)], r, s) for d, m, r, s in zip(labels, motions, directions, styles))


# ----------------------------------------------------------------------------- 3. words: splitting and joining

_TOKEN = re.compile(r"\w+|[^\w\s]")  # a run of letters/digits, or one punctuation mark
_NO_SPACE_BEFORE = re.compile(r" ([,.;:!?])")


def split_words(text: str) -> list[str]:
    """Lower-case ``text`` and split it into words, every punctuation mark its own word:
    ``"3, going up" -> ["3", ",", "going", "up"]``. The tokenizer (``text.py``) splits the same way."""
    if not isinstance(text, str):
        raise TypeError(f"a prompt must be a str, got {type(text).__name__}")
    return _TOKEN.findall(text.lower())


def join_words(words: Sequence[str]) -> str:
    """The inverse of ``split_words`` on the grammar's own text: words joined by spaces, none before a comma."""
    return _NO_SPACE_BEFORE.sub(r"\1", " ".join(words))


def suggest(word: str, vocabulary: Iterable[str], n: int = 3) -> list[str]:
    """The closest words of ``vocabulary`` to ``word`` (difflib's ratio), for errors that say what was meant."""
    return difflib.get_close_matches(word, list(vocabulary), n=n, cutoff=0.5)


def describe_unknown(words: Iterable[str], vocabulary: Iterable[str]) -> str:
    """``'bolt' (closest: 'bold', 'both'), 'xyz' (no close word)``: one entry per unknown word, in order."""
    vocabulary = list(vocabulary)
    parts = []
    for w in dict.fromkeys(words):  # each word once, first-seen order
        close = suggest(w, vocabulary)
        parts.append(f"{w!r} (closest: {', '.join(repr(c) for c in close)})" if close else f"{w!r} (no close word)")
    return ", ".join(parts)


# ----------------------------------------------------------------------------- 4. phrases: how each value is said

# Each *form* says one field's values one way. A template names the forms it uses, e.g. "{num}" or "{heading}".
FORMS: dict[str, tuple[str, dict]] = {
    # form        field        value -> phrase
    "num": ("digit", {d: str(d) for d in range(10)}),
    "word": ("digit", dict(enumerate(DIGIT_WORDS))),
    "style": ("style", {"thin": "thin", "regular": "regular", "bold": "bold"}),
    "style2": ("style", {"thin": "slender", "regular": "plain", "bold": "thick"}),
    "moves": ("motion", {"horizontal": "moves left and right", "vertical": "moves up and down",  # data.MOTION_PHRASES
                         "diagonal": "moves diagonally"}),
    "ly": ("motion", {"horizontal": "horizontally", "vertical": "vertically", "diagonal": "diagonally"}),
    "then": ("motion", {"horizontal": "left then right", "vertical": "up then down", "diagonal": "corner to corner"}),
    "heading": ("direction", {"right": "heading right", "up-right": "heading up and right", "up": "heading up",
                              "up-left": "heading up and left", "left": "heading left",
                              "down-left": "heading down and left", "down": "heading down",
                              "down-right": "heading down and right"}),
    "towards": ("direction", {"right": "towards the right", "up-right": "towards the top right",
                              "up": "towards the top", "up-left": "towards the top left", "left": "towards the left",
                              "down-left": "towards the bottom left", "down": "towards the bottom",
                              "down-right": "towards the bottom right"}),
}

# ----------------------------------------------------------------------------- 5. templates

# A template is a sentence with {form} slots. A slot in [brackets] is optional: the bracket is left out when its
# field is None. The digit is never optional: a caption always names its digit. Every template puts the style
# before the digit and the motion and direction after it.
TRAIN_TEMPLATES = (
    "the [{style} ]digit {num}[ {moves}][, {heading}]",  # today's data.make_caption: "the digit 3 moves up and down"
    "a [{style} ]{word}[ bouncing {ly}][, {towards}]",  # "a bold three bouncing vertically, towards the top"
    "[a {style} ]{num}[, going {then}][, {heading}]",  # "3, going up then down"
    "[{style2} ]number {num}[ moving {ly}][ {towards}]",  # "thick number 3 moving vertically towards the top"
    "a video of a [{style2} ]{word}[ that {moves}][, {heading}]",  # "a video of a thick three that moves ..."
    "[{style} ]{word}[, {then}][, {towards}]",  # "bold three, up then down, towards the bottom"
)
# New sentences from the same words: for testing only, never for training.
HELD_OUT_TEMPLATES = (
    "a video of the [{style} ]digit {word}[ bouncing {ly}][, {towards}]",
    "the [{style2} ]number {word}[ {moves}][, {heading}]",
    "the [{style2} ]{num}[, going {then}][, {towards}]",
)
TEMPLATES = TRAIN_TEMPLATES + HELD_OUT_TEMPLATES

_SLOT = re.compile(r"\{(\w+)\}")
_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")
_AN = re.compile(r"\ba (?=(eight|8)\b)")  # "a eight" -> "an eight"


def _field_of_group(group: str, template: str) -> str:
    slots = _SLOT.findall(group)
    if len(slots) != 1 or slots[0] not in FORMS:
        raise ValueError(f"template {template!r}: an optional [group] holds exactly one slot among "
                         f"{sorted(FORMS)}; got {group!r}")
    return FORMS[slots[0]][0]


def _render_one(meaning: Meaning, template: str) -> str:
    """One digit's clause: 1. drop optional groups whose field is None, 2. fill the slots, 3. fix "a"/"an"."""
    if meaning.digit is None:
        raise ValueError(f"a caption names its digit; got {meaning}. Give Meaning(digit=...) a digit 0 … 9")
    # 1. optional groups
    text = _OPTIONAL.sub(lambda g: g.group(1) if getattr(meaning, _field_of_group(g.group(1), template)) is not None
                         else "", template)

    # 2. slots
    def fill(slot):
        form = slot.group(1)
        if form not in FORMS:
            raise ValueError(f"template {template!r} has an unknown slot {{{form}}}; slots are {sorted(FORMS)}")
        field, phrases = FORMS[form]
        value = getattr(meaning, field)
        if value is None:
            raise ValueError(f"template {template!r} needs the {field} ({{{form}}} is not optional); got {meaning}")
        return phrases[value]

    text = _SLOT.sub(fill, text)
    # 3. articles
    return _AN.sub("an ", text)


def caption(meaning: Meaning | Sequence[Meaning], template: str | None = None,
            rng: np.random.Generator | None = None) -> str:
    """The prompt for ``meaning`` (one digit) or a sequence of meanings (several digits, joined "A, B and C").

    ``template`` is one of ``TEMPLATES`` (or your own in the same syntax); None draws one of ``TRAIN_TEMPLATES``
    with ``rng`` (one template for the whole caption). Lower-case, single spaces, no space before a comma:
    ``join_words(split_words(c)) == c``.
    """
    meanings = [meaning] if isinstance(meaning, Meaning) else list(meaning)
    if not meanings or not all(isinstance(m, Meaning) for m in meanings):
        raise ValueError(f"caption needs a Meaning or a non-empty sequence of them; got {meaning!r}")
    if template is None:
        rng = rng if rng is not None else np.random.default_rng()
        template = TRAIN_TEMPLATES[int(rng.integers(len(TRAIN_TEMPLATES)))]
    parts = [_render_one(m, template) for m in meanings]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]  # as data.make_caption


# ----------------------------------------------------------------------------- 6. every word the grammar can say


def _template_words(template: str) -> set[str]:
    return set(split_words(_SLOT.sub(" ", template.replace("[", " ").replace("]", " "))))


def _grammar_words(templates: Sequence[str]) -> tuple[str, ...]:
    words = set().union(*(_template_words(t) for t in templates))
    slots = {s for t in templates for s in _SLOT.findall(t)}
    for form in slots:
        for phrase in FORMS[form][1].values():
            words |= set(split_words(phrase))
    words |= {"and", ","}  # joining several digits: "A, B and C"
    if "a" in words:
        words.add("an")  # "a eight" is said "an eight"
    return tuple(sorted(words))


def longest_caption(num_digits: int = 1, templates: Sequence[str] = TEMPLATES) -> int:
    """Words (punctuation included) in the longest caption of ``num_digits`` digits: every full meaning through
    every template; clauses add up, plus one joiner ("," or "and") between two. A tokenizer adds <bos> and <eos>."""
    full = [Meaning(d, m, r, s) for d in range(10) for m in MOTIONS for r in DIRECTIONS for s in STYLES]
    one = max(len(split_words(_render_one(m, t))) for t in templates for m in full)
    return num_digits * one + (num_digits - 1)


WORDS = _grammar_words(TEMPLATES)  # what the tokenizer's vocabulary holds (with <pad>, <bos>, <eos>, <unk>)
TRAIN_WORDS = _grammar_words(TRAIN_TEMPLATES)  # the held-out templates add none (tested)

# ----------------------------------------------------------------------------- 7. reading a prompt back

# Every phrase of every form, as a word tuple -> (field, value); read longest first ("up and down" before "up").
# Phrases that only a direction form says on its own ("up", "top left", ...) are also listed so that "heading up"
# and "towards the top" read alike: "heading" and "towards the" are filler.
_LEAD_INS = ("moves", "heading", "towards", "the")  # words that open a phrase without adding to its meaning


def _phrase_table() -> dict[tuple[str, ...], tuple[str, object]]:
    table: dict[tuple[str, ...], tuple[str, object]] = {}
    for field, phrases in FORMS.values():
        for value, phrase in phrases.items():
            key = tuple(w for w in split_words(phrase) if w not in _LEAD_INS)
            if table.setdefault(key, (field, value)) != (field, value):
                raise ValueError(f"the phrase {' '.join(key)!r} would mean both {table[key]} and {(field, value)}")
    return table


_PHRASES = _phrase_table()
_LONGEST = max(len(p) for p in _PHRASES)
# Words that carry no meaning of their own: articles, nouns of the templates, verbs, joiners.
FILLER = frozenset(w for w in WORDS if not any(w in p for p in _PHRASES)) | set(_LEAD_INS) | {"and"}


def _events(prompt: str) -> list[tuple[str, object]]:
    """The prompt as a list of (field, value) in reading order; filler skipped; unknown words raise."""
    words = split_words(prompt)
    unknown = [w for w in words if w not in WORDS]
    if unknown:
        raise ValueError(f"the prompt {prompt!r} has words the caption grammar never says: "
                         f"{describe_unknown(unknown, WORDS)}; the grammar's words are captions.WORDS")
    events, i = [], 0
    while i < len(words):
        for n in range(min(_LONGEST, len(words) - i), 0, -1):  # the longest phrase starting here
            phrase = tuple(words[i:i + n])
            if phrase in _PHRASES:
                events.append(_PHRASES[phrase])
                i += n
                break
        else:
            if words[i] not in FILLER:
                raise ValueError(f"in {prompt!r} the word {words[i]!r} is not part of any phrase of the grammar "
                                 f"(e.g. {'up and down'!r}, {'heading up and left'!r}); see captions.FORMS")
            i += 1
    return events


def parse_all(prompt: str) -> tuple[Meaning, ...]:
    """Every digit ``prompt`` describes, in order; ``()`` for the empty prompt.

    A style attaches to the next digit (else the previous one), a motion or direction to the previous digit
    (else the next one); a prompt that names no digit gives one Meaning with ``digit=None``.
    """
    events = _events(prompt)
    if not events:
        return ()
    digit_at = [k for k, (field, _) in enumerate(events) if field == "digit"]
    slots: list[dict] = [{"digit": events[k][1]} for k in digit_at] or [{}]
    for k, (field, value) in enumerate(events):
        if field == "digit":
            continue
        before = [j for j, d in enumerate(digit_at) if d < k]
        after = [j for j, d in enumerate(digit_at) if d > k]
        if not digit_at:
            j = 0
        elif field == "style":
            j = after[0] if after else before[-1]
        else:
            j = before[-1] if before else after[0]
        if slots[j].get(field, value) != value:
            raise ValueError(f"{prompt!r} gives the {field} of one digit twice: {slots[j][field]!r} and {value!r}; "
                             f"say each once per digit")
        slots[j][field] = value
    return tuple(Meaning(**s) for s in slots)


def parse(prompt: str) -> Meaning:
    """The Meaning of a prompt about one digit (or none): ``parse("a bold 8") == Meaning(8, style="bold")``;
    the empty prompt is ``Meaning()``. For prompts about several digits use ``parse_all``."""
    meanings = parse_all(prompt)
    if len(meanings) > 1:
        raise ValueError(f"{prompt!r} describes {len(meanings)} digits; parse reads one, use parse_all for several")
    return meanings[0] if meanings else Meaning()
