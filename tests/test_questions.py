"""stn_course.checks.questions: a checked inline question says right or wrong, never the answer it expects."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stn_course.checks.questions import NOT_THIS_ONE, AnswerCompare, Choice


@pytest.mark.parametrize("expected, wrong", [
    (1536, 1024),
    (-0.375, 0.375),
    ((0.5, -0.25), (0.25, -0.5)),
    (torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[1.0, 2.0], [3.0, 5.0]])),
    ("negative", "positive"),
])
def test_a_wrong_answer_is_told_without_the_answer(expected, wrong):
    ok, error, message = AnswerCompare(atol=1e-9)(expected, wrong, None)
    assert not ok and error > 0 and message == NOT_THIS_ONE
    for shown in (repr(expected), str(expected), "1536", "0.375", "0.5", "4.0", "negative"):
        assert shown not in message


def test_a_right_answer_passes_within_tolerance():
    assert AnswerCompare(atol=0.5)(12, 12.4, None)[0]
    assert AnswerCompare(rtol=0.01)(1000.0, 1009.0, None)[0]
    assert not AnswerCompare(rtol=0.01)(1000.0, 1011.0, None)[0]
    assert AnswerCompare()((0.5, -0.25), (0.5, -0.25), None) == (True, 0.0, "")
    assert AnswerCompare()(3, torch.tensor(3), None)[0]  # a one-element tensor is a number
    assert AnswerCompare()(3, np.int64(3), None)[0]


def test_direction_says_too_high_or_too_low():
    assert AnswerCompare(direction=True)(10, 11, None)[2].endswith("yours is too high")
    assert AnswerCompare(direction=True)(10, 9, None)[2].endswith("yours is too low")


def test_the_form_of_an_answer_may_be_said():
    """A wrong type, shape or length gives nothing away: that feedback is kept."""
    assert AnswerCompare()(2.0, "two", None)[2] == "expected a number, got str 'two'"
    assert AnswerCompare()(2.0, True, None)[2] == "expected a number, got bool True"
    assert AnswerCompare()(1.0, math.nan, None)[2] == "the answer is NaN"
    message = AnswerCompare()(torch.zeros(2, 3), torch.zeros(3, 2), None)[2]
    assert message == "expected shape (2, 3), got (3, 2)"
    assert AnswerCompare()((1, 2), (1, 2, 3), None)[2].startswith("expected a sequence of 2 results")


def test_a_choice_is_compared_as_words():
    choose = Choice("positive", "negative", "zero")
    assert choose("negative", " Negative\n", None) == (True, 0.0, "")
    assert choose("negative", "zero", None) == (False, 1.0, NOT_THIS_ONE)
    assert choose("negative", "minus", None)[2] == "'minus' is not one of the choices: 'positive', 'negative', 'zero'"
    assert choose("negative", -1, None)[2].startswith("expected one of the choices as a string")


def test_a_question_does_not_advertise_its_recipe_after_one_wrong_try():
    """A question's recipe is its answer: a first wrong answer gets the hint only; a function exercise is offered its
    step-by-step recipe (stn_course.checks.hints); the recipe still comes on request or from the third try."""
    from stn_course.checks import RECIPE_STAGE, get, hints, run_check

    question = get("07.fusion_bound")
    result = run_check(question, lambda input_shape, out_size: 0.5, seed=1)
    assert not result.passed
    first = "\n".join(hints(result, stage=1))
    assert "Hint:" in first and "recipe" not in first.lower()
    assert "Recipe:" in "\n".join(hints(result, stage=RECIPE_STAGE))
    assert "Recipe:" in "\n".join(hints(result, stage=1, recipe=True))
    exercise = get("02.affine_grid")
    result = run_check(exercise, lambda theta, size, align_corners=False: theta.new_zeros(size[0], *size[2:], 2), seed=1)
    assert "recipe=True" in "\n".join(hints(result, stage=1))
