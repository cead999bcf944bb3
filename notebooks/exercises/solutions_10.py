"""Instructor solutions for the exercises of notebook 10 (text to video). Try them yourself first!"""

from __future__ import annotations


def is_held_out(meaning, pairs):
    """Exercise 1. A clip is held out when its (digit, motion) or its (digit, style) is one of ``pairs``."""
    return (meaning.digit, meaning.motion) in pairs or (meaning.digit, meaning.style) in pairs


# Exercise 2. A new sentence shape from the grammar's own words: style before the digit, motion and direction after.
my_template = "a video of the [{style2} ]digit {num}[ moving {ly}][, {heading}]"

# Exercise 3. One possible answer (yours should describe the clip you found).
my_explanation = ("The digit was right but the style failed: the prompt asked for a bold seven, a combination the "
                  "training data never showed, and the model drew a regular stroke. The text encoder knows 'bold' "
                  "from other digits, but ten minutes of training were not enough budget to compose it with 7.")
