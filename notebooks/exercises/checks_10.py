"""Checks for the exercises of notebook 10 (text to video).

Each ``check_*`` takes your answer, prints what is right or wrong with a hint, and returns a verdict: true
or false in code, invisible in a notebook (a cell ending with a check shows only its message).
It never raises: an exercise you have not tried yet (``None``, or a function that still raises
``NotImplementedError``) just gets a friendly reminder, so the notebook runs top to bottom.
"""

from __future__ import annotations

import re

from vdiff_edu import captions
from vdiff_edu.captions import Meaning
from vdiff_edu.text import Tokenizer

from ._checking import NOT_YET, call, fail, ok, verdict

# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: which clips a hold-out removes


@verdict
def check_is_held_out(fn) -> bool:
    """``fn(meaning, pairs)`` → True when (digit, motion) or (digit, style) of ``meaning`` is in ``pairs``."""
    name = "Exercise 1 (is_held_out)"
    cases = [
        (Meaning(3, "vertical", "up", "regular"), {(3, "vertical")}, True),
        (Meaning(3, "horizontal", "left", "regular"), {(3, "vertical")}, False),  # the digit alone is not enough
        (Meaning(4, "vertical", "up", "regular"), {(3, "vertical")}, False),  # nor the motion alone
        (Meaning(7, "diagonal", "up-left", "bold"), {(3, "vertical"), (7, "bold")}, True),  # a style pair
        (Meaning(5, "horizontal", "right", "thin"), {(5, "thin")}, True),
        (Meaning(5, "horizontal", "right", "regular"), {(5, "thin")}, False),
        (Meaning(1, "vertical", "down", "thin"), set(), False),  # nothing held out
    ]
    for meaning, pairs, want in cases:
        out, msg = call(fn, name, meaning, pairs)
        if msg:
            print(msg)
            return False
        if bool(out) != want:
            return fail(f"{name}: is_held_out({meaning}, {sorted(pairs)}) = {out!r}, expected {want}",
                        "a pair is (digit, motion) or (digit, style): test (m.digit, m.motion) in pairs "
                        "or (m.digit, m.style) in pairs")
    return ok(f"{name}: right, the same rule MovingMNIST(holdout=...) uses to keep pairs out of the train split")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: a new phrasing


PROBES = (Meaning(3, "vertical", "up", "bold"), Meaning(8, "horizontal", "left", "thin"),
          Meaning(0, "diagonal", "down-right", "regular"), Meaning(6), Meaning(2, style="bold"))


@verdict
def check_template(template) -> bool:
    """``template`` is a str in the grammar's template syntax, new, made of known words, and read back by parse."""
    name = "Exercise 2 (my_template)"
    if template is None:
        print(NOT_YET.format(name=name).replace("Fill in the function above", "Set my_template above"))
        return False
    if not isinstance(template, str):
        return fail(f"{name}: my_template should be a str; got {type(template).__name__}")
    if template in captions.TEMPLATES:
        return fail(f"{name}: that is one of the grammar's own templates", "write a new sentence shape")
    slots = set(re.findall(r"\{(\w+)\}", template))
    unknown = sorted(slots - set(captions.FORMS))
    if unknown:
        return fail(f"{name}: unknown slot(s) {unknown}", f"the slots are {sorted(captions.FORMS)}")
    if not slots & {"num", "word"}:
        return fail(f"{name}: the template never names the digit", "put {num} or {word} in it, outside [...]")
    tokenizer = Tokenizer()
    for m in PROBES:
        try:
            text = captions.caption(m, template)
        except Exception as err:  # the learner's template, not our code
            return fail(f"{name}: caption({m}, my_template) failed: {type(err).__name__}: {err}",
                        "optional parts go in [...] and each holds one slot, e.g. '[, {heading}]'")
        try:
            tokenizer.encode([text])
        except ValueError as err:
            return fail(f"{name}: {err}", "use only words the training templates use (captions.WORDS)")
        if text in {captions.caption(m, t) for t in captions.TEMPLATES}:
            return fail(f"{name}: '{text}' is what an existing template already says", "write a new sentence shape")
        try:
            back = captions.parse(text)
        except ValueError as err:
            return fail(f"{name}: parse('{text}') failed: {err}",
                        "the style goes before the digit, the motion and direction after it")
        lost = [k for k in ("digit", "motion", "direction", "style")
                if getattr(m, k) is not None and _says(template, k) and getattr(back, k) != getattr(m, k)]
        if lost:
            return fail(f"{name}: '{text}' reads back as {back}; it loses {lost} of {m}",
                        "the style goes before the digit, the motion and direction after it")
    examples = "; ".join(captions.caption(m, template) for m in PROBES[:2])
    return ok(f"{name}: a new phrasing the tokenizer knows and parse reads back: {examples}")


def _says(template: str, field: str) -> bool:
    """Whether ``template`` has a slot for ``field`` (digit, motion, direction or style)."""
    return any(captions.FORMS[s][0] == field for s in re.findall(r"\{(\w+)\}", template) if s in captions.FORMS)


# ----------------------------------------------------------------------------------------------------------------
# Exercise 3: explain a failure


CAUSES = ("data", "encoder", "cross-attention", "attention", "guidance", "budget", "steps", "measurement",
          "reader", "tracker", "training", "held out", "unseen")


@verdict
def check_explanation(answer) -> bool:
    """A written answer: a few sentences that name the attribute that failed and a cause. Only its form can be
    checked; talk it over with your instructor or a classmate."""
    name = "Exercise 3 (my_explanation)"
    if answer is None:
        print(NOT_YET.format(name=name).replace("Fill in the function above", "Write my_explanation above"))
        return False
    if not isinstance(answer, str) or len(answer.split()) < 15:
        return fail(f"{name}: write two or three sentences (15 words or more); got "
                    f"{len(answer.split()) if isinstance(answer, str) else type(answer).__name__}")
    low = answer.lower()
    attributes = [a for a in ("digit", "motion", "direction", "style") if a in low]
    if not attributes:
        return fail(f"{name}: say which attribute failed", "digit, motion, direction or style")
    if not any(c in low for c in CAUSES):
        return fail(f"{name}: say what you think limits the model there",
                    "the data, the text encoder, cross-attention, guidance, the training budget, or the measurement")
    return ok(f"{name}: an explanation that names {', '.join(attributes)} and a cause. A check can only read its "
              f"form: test your idea (exercise 4 is one way)")
