"""The early-stopping seam: answers normalised, errors contained, one agreed stop."""

from __future__ import annotations

import math

from scaling_callback.callback.stopping import StopDecision, StopSeam, ask_policy


class Policy:
    def __init__(self, answer) -> None:
        self.answer = answer

    def should_stop(self, **context):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_answers_are_normalised():
    yes = ask_policy(Policy(True))
    assert yes.stop and math.isnan(yes.probability) and yes.reason == "policy said stop"
    assert not ask_policy(Policy(None)).stop and not ask_policy(Policy(False)).stop
    decision = ask_policy(Policy(StopDecision(True, 0.97, "worse than the best run")))
    assert decision.stop and decision.probability == 0.97

    class Answer:
        stop, probability, reason = True, None, "custom"

    custom = ask_policy(Policy(Answer()))
    assert custom.stop and math.isnan(custom.probability) and custom.reason == "custom"


def test_policy_errors_do_not_stop_and_say_why():
    decision = ask_policy(Policy(ValueError("no data")))
    assert not decision.stop and decision.reason == "policy error: ValueError: no data"


def test_seam_records_every_decision_and_agrees_once():
    recorded = []
    seam = StopSeam(Policy(StopDecision(True, 0.9, "stop")))
    assert not seam.agree(lambda flag: flag, step=10)
    seam.consider(recorded.append, step=20)
    seam.consider(recorded.append, step=30)  # already decided: not asked again
    assert len(recorded) == 1
    assert seam.agree(lambda flag: flag, step=40) and seam.stopped_at == 40
    assert not seam.agree(lambda flag: True, step=50)  # once
    other_rank = StopSeam(None)
    assert other_rank.agree(lambda flag: True, step=40)  # a rank that decided nothing follows rank 0
