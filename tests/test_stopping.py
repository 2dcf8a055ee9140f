"""The early-stopping seam on the callback side: the worker's decision taken once, one agreed stop."""

from __future__ import annotations

from scaling_callback.callback.stopping import StopSeam, decision_values
from scaling_callback.stopping import Decision, StoppingPolicy


class Never(StoppingPolicy):
    def judge(self, run, sweep) -> Decision:
        return Decision(False, "continue")


def test_decisions_travel_as_plain_values_with_their_fit():
    values = decision_values(Decision(True, "stop", None, "worse"), fit_id=7)
    assert values == {"stop": True, "kind": "stop", "probability": values["probability"], "reason": "worse", "fit_id": 7}
    assert values["probability"] != values["probability"]  # NaN: a rank rule has no probability


def test_seam_records_every_decision_and_agrees_once():
    recorded = []
    seam = StopSeam(Never())
    assert not seam.agree(lambda flag: flag, step=10)
    seam.take({"decision": decision_values(Decision(False, "continue"), 1)}, recorded.append)
    seam.take({"decision": decision_values(Decision(True, "stop", 0.01, "worse"), 2)}, recorded.append)
    seam.take({"decision": decision_values(Decision(True, "stop", 0.01, "worse"), 3)}, recorded.append)  # decided
    assert [d["fit_id"] for d in recorded] == [1, 2]
    assert seam.agree(lambda flag: flag, step=40) and seam.stopped_at == 40
    assert not seam.agree(lambda flag: True, step=50)  # once
    other_rank = StopSeam(None)
    assert other_rank.agree(lambda flag: True, step=40)  # a rank that decided nothing follows rank 0
    assert seam.end_status(40, 100) == ("stopped", "worse")
