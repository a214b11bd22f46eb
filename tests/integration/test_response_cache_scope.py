"""The response cache never crosses teams (issue 15, item 5): its keys carry the run's team
(``runs.response_cache``) and the policy's version (``agentdesk.runtime.model_calls``)."""

from __future__ import annotations

import pytest

from agentdesk.runtime.model_calls import cache_key
from runs.models import Agent
from runs.response_cache import DjangoResponseCache

from .helpers import submit, wait_status

QUESTION = "Where is my order 1077?"


def test_an_entry_of_one_team_is_invisible_to_another(demo):
    key = cache_key("sim-small", [{"role": "user", "content": QUESTION}], [], 256, policy="v1")
    mine, theirs = DjangoResponseCache(demo["team"].pk), DjangoResponseCache(
        demo["other_team"].pk)
    mine.set(key, {"content": "demo's answer"}, 60)
    assert mine.get(key) == {"content": "demo's answer"}
    assert theirs.get(key) is None


@pytest.mark.usefixtures("celery_worker", "data_dir")
def test_the_same_request_from_another_team_asks_the_model_again(demo):
    demo_agent = Agent.objects.get(team=demo["team"], slug="support-refunds")
    Agent.objects.create(team=demo["other_team"], slug="support-refunds", name="Refunds",
                         policy=demo_agent.policy, input_schema=demo_agent.input_schema)
    first = submit(demo["team"], demo["operator"], QUESTION)
    wait_status(first, "succeeded")
    again = submit(demo["team"], demo["operator"], QUESTION)  # same team: from the cache
    wait_status(again, "succeeded")
    assert all(s.args.get("cache_hit") for s in again.steps.filter(kind="model"))
    other = submit(demo["other_team"], demo["outsider"], QUESTION)  # same policy, same input
    wait_status(other, "succeeded")
    steps = other.steps.filter(kind="model")
    assert steps.exists() and not any(s.args.get("cache_hit") for s in steps)
    assert other.cost_usd > 0


def test_a_reply_is_stored_with_the_next_lookup_or_when_the_slice_flushes(demo):
    """A slice's reply waits for its next lookup, to go in that lookup's round trip; a
    lookup of the same key sees it, and ``flush`` stores the last one."""
    def key(n: int) -> str:
        return cache_key("sim-small", [{"role": "user", "content": f"{QUESTION} {n}"}], [], 256,
                         policy="v1")

    slice_, reader = DjangoResponseCache(demo["team"].pk), DjangoResponseCache(demo["team"].pk)
    slice_.set(key(1), {"content": "one"}, 60)
    assert reader.get(key(1)) is None  # waiting for this slice's next lookup
    assert slice_.get(key(2)) is None  # that lookup wrote it first
    assert reader.get(key(1)) == {"content": "one"}
    slice_.set(key(3), {"content": "three"}, 60)
    assert slice_.get(key(3)) == {"content": "three"}  # the same key: written, then read
    slice_.set(key(4), {"content": "four"}, 60)
    slice_.set(key(5), {"content": "five"}, 60)  # a second reply writes the first
    assert reader.get(key(4)) == {"content": "four"}
    slice_.flush()
    assert reader.get(key(5)) == {"content": "five"}
