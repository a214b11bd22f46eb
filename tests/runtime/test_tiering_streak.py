"""The tier is sticky: large after an unsure small decision, small again after a confident streak.

Each model step says why the run is on the tier it is (``args["why"]``).
"""

from __future__ import annotations

import pytest

from agentdesk.runtime import router
from agentdesk.runtime.loop import Engine
from agentdesk.runtime.outcomes import Reason, RunStatus, StepKind
from agentdesk.runtime.state import HumanInput, PolicySnapshot, RunState

from .conftest import LARGE, SMALL, new_run
from .fakes import decision_reply, tool_call_reply

SMALL_UNSURE = "small model unsure"
SMALL_SURE = "small model confident"
LARGE_DECIDES = "small model was unsure: large model decides"
LARGE_UNSURE = "large model unsure too: a human decides"


def _step_down(n: int) -> str:
    return f"{n} confident large-model steps: stepping back down"


def _search(i: int, confidence: float = 0.9):
    return tool_call_reply("search_policy", {"query": f"shipping question {i}"},
                           confidence=confidence)


def _trace(store) -> list[tuple[str, str]]:
    return [(s.model, s.args["why"]) for s in store.steps_of(StepKind.MODEL)]


@pytest.mark.parametrize("downgrade_after", [1, 2, 3])
def test_large_stays_until_a_confident_streak_then_small_again(
    engine, model, store, policy, downgrade_after
):
    policy.no_progress_limit = 100  # the searches find the same documents; not a loop here
    policy.downgrade_after = downgrade_after
    tier_at_commit = []
    store.after_commit = lambda s: tier_at_commit.append(s.snapshots[-1]["tier"])
    model.script(_search(0, confidence=0.3))  # small: unsure
    model.script(*[_search(i + 1) for i in range(downgrade_after)])  # large: confident
    model.script(decision_reply("Shipping takes 3 days."))  # small again
    state = engine.advance(new_run("How long does shipping take?"))

    assert state.status == RunStatus.SUCCEEDED
    assert [c.model for c in model.calls] == [SMALL] + [LARGE] * downgrade_after + [SMALL]
    assert _trace(store) == [
        (SMALL, SMALL_UNSURE),
        *[(LARGE, LARGE_DECIDES)] * (downgrade_after - 1),
        (LARGE, _step_down(downgrade_after)),
        (SMALL, SMALL_SURE),
    ]
    # the tier is part of every checkpoint: a fresh worker continues on the same tier
    model_commits = [t for t, s in zip(tier_at_commit, store.steps, strict=True)
                     if s.kind == StepKind.MODEL]
    assert model_commits == ["small"] + ["large"] * (downgrade_after - 1) + ["small", "small"]
    assert state.tier == "small" and state.large_streak == 0


def test_the_unsure_small_step_is_kept_in_the_trace(engine, model, store):
    model.script(decision_reply("Maybe?", confidence=0.5), model=SMALL)
    model.script(decision_reply("In transit.", confidence=0.95), model=LARGE)
    engine.advance(new_run())
    small, large = store.steps_of(StepKind.MODEL)
    assert (small.model, small.confidence, small.args["why"]) == (SMALL, 0.5, SMALL_UNSURE)
    assert small.result["answer"] == "Maybe?"
    assert (large.model, large.args["why"]) == (LARGE, LARGE_DECIDES)


def test_an_unsure_large_decision_resets_the_streak_and_says_a_human_decides(
    agent, policy, model, store
):
    policy.downgrade_after = 2
    model.script(tool_call_reply("lookup_order", {"order_id": "1077"}, confidence=0.2),
                 model=SMALL)
    model.script(
        tool_call_reply("lookup_order", {"order_id": "1077"}, confidence=0.9),  # streak 1
        decision_reply("Maybe in transit?", confidence=0.4),  # unsure: streak 0, a human
        model=LARGE,
    )
    state = Engine(agent, policy, model, store).advance(new_run())
    assert state.status == RunStatus.WAITING_HUMAN
    assert state.reason == Reason.LOW_CONFIDENCE
    assert _trace(store) == [(SMALL, SMALL_UNSURE), (LARGE, LARGE_DECIDES), (LARGE, LARGE_UNSURE)]
    checkpoint = store.last_checkpoint()
    assert (checkpoint.tier, checkpoint.large_streak) == ("large", 0)

    # after the operator's reply the run is still on the large model, streak from zero
    checkpoint.human_input = HumanInput(decision="reply", message="It is 1077.", operator="op")
    model.script(_search(1), _search(2), model=LARGE)
    model.script(decision_reply("In transit."), model=SMALL)
    state = Engine(agent, policy, model, store).advance(checkpoint)
    assert state.status == RunStatus.SUCCEEDED
    assert [c.model for c in model.calls] == [SMALL, LARGE, LARGE, LARGE, LARGE, SMALL]
    assert [why for _, why in _trace(store)][3:] == [LARGE_DECIDES, _step_down(2), SMALL_SURE]


def test_after_stepping_down_an_unsure_small_decision_goes_up_again(engine, model, store, policy):
    policy.downgrade_after = 1
    policy.no_progress_limit = 100
    model.script(_search(0, confidence=0.1), _search(2, confidence=0.1), model=SMALL)
    model.script(_search(1), decision_reply("Shipping takes 3 days."), model=LARGE)
    state = engine.advance(new_run("How long does shipping take?"))
    assert state.status == RunStatus.SUCCEEDED
    assert [c.model for c in model.calls] == [SMALL, LARGE, SMALL, LARGE]
    assert [why for _, why in _trace(store)] == [
        SMALL_UNSURE, _step_down(1), SMALL_UNSURE, _step_down(1)]


def test_without_a_distinct_large_model_an_unsure_small_decision_goes_to_a_human(
    agent, policy, model, store
):
    policy.large_model = policy.small_model
    model.script(decision_reply("Maybe?", confidence=0.3))
    state = Engine(agent, policy, model, store).advance(new_run())
    assert state.reason == Reason.LOW_CONFIDENCE
    assert [c.model for c in model.calls] == [SMALL]
    assert _trace(store) == [(SMALL, SMALL_UNSURE)]


def test_router_tiers_follow_the_state():
    policy = PolicySnapshot(small_model=SMALL, large_model=LARGE)
    state = RunState(run_id="r", agent="a", input={})
    assert router.tiers(policy, state) == [("small", SMALL), ("large", LARGE)]
    state.tier = "large"
    assert router.tiers(policy, state) == [("large", LARGE)]
    no_large = PolicySnapshot(small_model=SMALL, large_model="")
    assert router.tiers(no_large, state) == [("small", SMALL)]
