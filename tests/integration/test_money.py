"""Money that never leaks (issue 15, item 6).

1. A team-budget reservation is held by the run (``Run.reserved_usd``), so the one a worker
   had out when it died is given back by whoever takes its lease away — the reaper, a worker
   taking over the expired lease, a cancel — exactly once, even against a slow worker that
   settles afterwards (then only its real cost is counted). A call is settled by the
   checkpoint of its step (issue 16: one transaction per step); ``settled`` stands for it.
   The SIGKILL version of this is in ``tests/chaos/test_worker_kills.py``.
2. "Extend budget" after a ``team_budget`` bound raises the team's budget for the day by the
   amount a team admin gives (audited), not the run's own cost ceiling; an operator is
   refused, in the service and in the console.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agentdesk.runtime.outcomes import Phase, RunStatus
from agentdesk.runtime.ports import LeaseLost
from agentdesk.runtime.state import RunState
from runs import errors, lifecycle, maintenance, services
from runs.adapters import DjangoRunStore
from runs.budgets import NEXT_HOLD_HEADROOM, DjangoTeamBudget
from runs.models import AuditEvent, Escalation, Membership, Policy, Run, TeamDailySpend

from .helpers import open_escalation, submit, wait_status

HELD = Decimal("0.25")
COST = Decimal("0.04")


# -- reservations: attributable, and released once --------------------------------------


@pytest.fixture
def no_workers(monkeypatch):
    """The runs of these tests are advanced by hand, as a worker would: nothing is queued
    for the test worker another test may have left running."""
    monkeypatch.setattr("runs.enqueue.advance_run", lambda *args, **kwargs: None)


def leased_run(demo, owner: str = "worker-a") -> tuple[Run, DjangoTeamBudget]:
    run = submit(demo["team"], demo["operator"], "Where is my order 1077?")
    assert lifecycle.start(run.pk, owner) is not None
    return run, DjangoTeamBudget(demo["team"].pk, run.pk, owner)


def spend(team) -> TeamDailySpend:
    return TeamDailySpend.objects.get(team=team, day=timezone.now().date())


def expire_lease(run: Run) -> None:
    Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=5))


def settled(run: Run, budget: DjangoTeamBudget, held: Decimal, cost: Decimal) -> bool:
    """The worker's call returns and its step is committed: the checkpoint settles the
    call. False when the lease was lost meanwhile (then only the cost is counted)."""
    budget.settle(held, cost)
    state = RunState(run_id=str(run.pk), agent=run.agent.slug, input=run.input,
                     status=RunStatus.RUNNING)
    try:
        lifecycle.checkpoint(run, budget.owner, state, settlements=budget.take())
    except LeaseLost:
        return False
    return True


def held_by(run: Run) -> tuple[Decimal, object]:
    run.refresh_from_db()
    return run.reserved_usd, run.reserved_on


def test_a_reservation_is_held_by_the_run_and_settled_by_it(demo, no_workers):
    run, budget = leased_run(demo)
    assert budget.reserve(HELD)
    assert held_by(run) == (HELD, timezone.now().date())
    assert spend(demo["team"]).reserved_usd == HELD
    budget.settle(HELD, COST)  # noted: nothing is written until the step's checkpoint
    assert held_by(run) == (HELD, timezone.now().date())
    assert settled(run, budget, Decimal("0"), Decimal("0"))
    assert held_by(run) == (0, None)
    row = spend(demo["team"])
    assert (row.reserved_usd, row.spent_usd) == (0, COST)


def test_the_reaper_releases_a_dead_workers_reservation_once(demo, no_workers):
    run, budget = leased_run(demo)
    assert budget.reserve(HELD)
    expire_lease(run)  # the worker died mid-call: it never settles
    assert maintenance.reap_runs() == 1
    assert held_by(run) == (0, None)
    assert spend(demo["team"]).reserved_usd == 0
    Run.objects.filter(pk=run.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert maintenance.reap_runs() == 1  # reaped again (still queued): nothing more back
    row = spend(demo["team"])
    assert (row.reserved_usd, row.spent_usd) == (0, 0)


def test_a_slow_worker_settling_after_the_reaper_counts_its_cost_only(demo, no_workers):
    run, slow = leased_run(demo)
    assert slow.reserve(HELD)
    expire_lease(run)
    maintenance.reap_runs()
    fresh = lifecycle.start(run.pk, "worker-b")  # the re-enqueued run, on another worker
    assert fresh is not None
    budget_b = DjangoTeamBudget(demo["team"].pk, run.pk, "worker-b")
    assert budget_b.reserve(Decimal("0.10"))
    # the call of the worker presumed dead comes back at last
    assert not settled(run, slow, HELD, COST)
    assert held_by(run) == (Decimal("0.10"), timezone.now().date())  # b's hold untouched
    row = spend(demo["team"])
    assert (row.reserved_usd, row.spent_usd) == (Decimal("0.10"), COST)
    with pytest.raises(LeaseLost):  # and it may not spend again for a run it lost
        slow.reserve(HELD)
    assert settled(fresh, budget_b, Decimal("0.10"), Decimal("0.02"))
    row = spend(demo["team"])
    assert (row.reserved_usd, row.spent_usd) == (0, COST + Decimal("0.02"))


def test_a_worker_taking_over_an_expired_lease_releases_the_previous_hold(demo, no_workers):
    run, dead = leased_run(demo)
    assert dead.reserve(HELD)
    expire_lease(run)  # no reaper: a redelivered message reaches another worker first
    assert lifecycle.start(run.pk, "worker-b") is not None
    assert held_by(run) == (0, None)
    assert spend(demo["team"]).reserved_usd == 0


def test_cancelling_a_run_mid_call_releases_its_hold_once(demo, no_workers):
    run, budget = leased_run(demo)
    assert budget.reserve(HELD)
    services.cancel_run(run_id=run.pk, user=demo["operator"])
    assert spend(demo["team"]).reserved_usd == 0
    assert not settled(run, budget, HELD, COST)  # the worker's call returns after the cancel
    row = spend(demo["team"])
    assert (row.reserved_usd, row.spent_usd) == (0, COST)


def test_a_refused_reservation_holds_nothing_on_the_run(demo, no_workers):
    demo["team"].daily_budget_usd = Decimal("0.10")
    demo["team"].save()
    run, budget = leased_run(demo)
    assert not budget.reserve(HELD)
    assert held_by(run) == (0, None)
    assert spend(demo["team"]).reserved_usd == 0


def race(*steps) -> None:
    """Run ``steps`` in threads released at the same instant; re-raise what one raised."""
    gate = threading.Barrier(len(steps))
    failures: list[BaseException] = []

    def run(step) -> None:
        try:
            gate.wait()
            step()
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(step,)) for step in steps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not failures, failures


def test_the_first_calls_of_a_day_racing_all_get_their_hold(demo, no_workers):
    """The team's row for the day does not exist yet and several workers reserve at once:
    one creates it, and none of them takes the missing row for a budget used up."""
    leased = [leased_run(demo, owner=f"first-{i}") for i in range(6)]
    TeamDailySpend.objects.filter(team=demo["team"]).delete()
    won: list[bool] = []
    race(*(lambda budget=budget: won.append(budget.reserve(HELD)) for _run, budget in leased))
    assert won == [True] * 6
    assert spend(demo["team"]).reserved_usd == HELD * 6


@pytest.mark.parametrize("first", ["settle", "reap"])
def test_settle_and_reap_racing_give_the_hold_back_once(demo, no_workers, first):
    """A worker settling at the very moment the reaper takes its expired lease: both at
    once, many times; whichever wins, the hold goes back exactly once and the cost counts."""
    rounds = 8
    for i in range(rounds):
        run, budget = leased_run(demo, owner=f"slow-{i}")
        assert budget.reserve(HELD)
        expire_lease(run)
        steps = [lambda run=run, budget=budget: settled(run, budget, HELD, COST),
                 maintenance.reap_runs]
        race(*(steps if first == "settle" else reversed(steps)))
        assert held_by(run) == (0, None)
        Run.objects.filter(pk=run.pk).update(status="aborted", lease_owner="")
    row = spend(demo["team"])
    assert row.reserved_usd == 0
    assert row.spent_usd == COST * rounds


# -- extending the team's budget after a team_budget bound ------------------------------


@pytest.fixture
def over_budget(demo, celery_worker, data_dir):
    """A run paused because its team's budget for the day is used up (it is 0)."""
    policy = Policy.objects.get()
    policy.on_bound = "escalate"
    policy.save()
    demo["team"].daily_budget_usd = Decimal("0")
    demo["team"].save()
    run = wait_status(submit(demo["team"], demo["operator"], "Where is my order 1077?"),
                      "waiting_human")
    esc = open_escalation(run)
    assert (esc.reason, run.reason) == ("team_budget", "team_budget")
    return run, esc


def test_a_team_admin_extends_the_teams_budget_for_the_day_and_the_run_spends(
        demo, over_budget):
    run, esc = over_budget
    max_cost = run.policy.max_cost_usd
    services.decide(escalation_id=esc.pk, user=demo["admin"], decision="extend_budget",
                    budget={"team_budget_usd": "1.5"})
    wait_status(run, "succeeded")
    assert run.cost_usd > 0  # it could spend: the bound it hit was lifted
    assert run.policy.max_cost_usd == max_cost  # the run's own ceiling was not touched
    row = spend(demo["team"])
    assert row.extra_usd == Decimal("1.5")
    assert row.spent_usd == run.cost_usd and row.reserved_usd == 0
    event = AuditEvent.objects.get(action="team.budget_extended")
    assert event.actor == demo["admin"] and event.target_id == str(demo["team"].pk)
    assert event.detail["amount_usd"] == "1.50000000"
    assert event.detail["day"] == timezone.now().date().isoformat()
    assert (event.detail["escalation_id"], event.detail["run_id"]) == (esc.pk, run.pk)
    decided = AuditEvent.objects.get(action="escalation.decided", target_id=str(esc.pk))
    assert decided.detail["team_budget_usd"] == "1.50000000"


def test_a_team_admin_need_not_be_a_superuser(demo, over_budget):
    run, esc = over_budget
    lead = get_user_model().objects.create_user("lead", password="test-password-1")
    Membership.objects.create(user=lead, team=demo["team"], role=Membership.Role.ADMIN)
    services.decide(escalation_id=esc.pk, user=lead, decision="extend_budget",
                    budget={"team_budget_usd": 1})
    wait_status(run, "succeeded")
    assert AuditEvent.objects.get(action="team.budget_extended").actor == lead


def test_an_operator_may_not_raise_the_teams_budget(demo, over_budget):
    run, esc = over_budget
    with pytest.raises(errors.Forbidden) as refused:
        services.decide(escalation_id=esc.pk, user=demo["operator"], decision="extend_budget",
                        budget={"team_budget_usd": "5"})
    assert refused.value.status == 403 and "team admin" in refused.value.message
    assert Escalation.objects.get(pk=esc.pk).status == "open"
    assert not TeamDailySpend.objects.filter(extra_usd__gt=0).exists()
    assert not AuditEvent.objects.filter(action="team.budget_extended").exists()


@pytest.mark.parametrize(("budget", "field"), [
    ({}, "team_budget_usd"),  # the amount is what lifts this bound: required
    ({"team_budget_usd": "0"}, "team_budget_usd"),
    ({"team_budget_usd": "-3"}, "team_budget_usd"),
    ({"team_budget_usd": "lots"}, "team_budget_usd"),
    ({"team_budget_usd": "1", "max_steps": 1}, "max_steps"),  # run limits still only go up
])
def test_a_team_extension_must_be_an_amount_above_zero(demo, over_budget, budget, field):
    _, esc = over_budget
    with pytest.raises(errors.Invalid) as refused:
        services.decide(escalation_id=esc.pk, user=demo["admin"], decision="extend_budget",
                        budget=budget)
    assert field in refused.value.fields
    assert Escalation.objects.get(pk=esc.pk).status == "open"
    assert not TeamDailySpend.objects.filter(extra_usd__gt=0).exists()


def test_only_a_team_budget_escalation_extends_the_team(demo, celery_worker, data_dir):
    policy = Policy.objects.get()
    policy.on_bound, policy.max_steps = "escalate", 3
    policy.save()
    run = wait_status(submit(demo["team"], demo["operator"], "Where is my order 1077?"),
                      "waiting_human")
    esc = open_escalation(run)
    assert esc.reason == "step_limit"
    with pytest.raises(errors.Invalid) as refused:
        services.decide(escalation_id=esc.pk, user=demo["admin"], decision="extend_budget",
                        budget={"max_steps": 20, "team_budget_usd": "5"})
    assert "team_budget_usd" in refused.value.fields


def test_the_console_asks_a_team_admin_for_the_amount_and_refuses_an_operator(
        demo, over_budget):
    run, esc = over_budget
    url = f"/escalations/{esc.pk}/"
    operator, admin = Client(), Client()
    operator.force_login(demo["operator"])
    admin.force_login(demo["admin"])

    page = admin.get(url).content.decode()
    assert 'data-testid="extend-team-budget"' in page and 'name="team_budget_usd"' in page
    assert 'data-testid="extend-budget"' not in page  # not the run's limits
    assert 'data-testid="team-budget-admin-only"' not in page
    shown = operator.get(url).content.decode()
    assert 'data-testid="team-budget-admin-only"' in shown

    refused = operator.post(f"{url}decide/", {"action": "extend_budget",
                                             "team_budget_usd": "5"},
                            headers={"HX-Request": "true"})
    assert refused.status_code == 403
    assert "Only a team admin can raise" in refused.content.decode()
    assert Escalation.objects.get(pk=esc.pk).status == "open"

    done = admin.post(f"{url}decide/", {"action": "extend_budget", "team_budget_usd": "2"},
                      headers={"HX-Request": "true"})
    assert done.status_code == 200, done.content.decode()
    wait_status(run, "succeeded")
    assert spend(demo["team"]).extra_usd == Decimal("2")
    audit = admin.get("/audit/").content.decode()
    assert 'data-testid="audit-budget-extended"' in audit


# -- the next call's hold, made by the checkpoint before it ------------------------------


def going_on(run: Run, phase: Phase, status: RunStatus = RunStatus.RUNNING) -> RunState:
    return RunState(run_id=str(run.pk), agent=run.agent.slug, input=run.input,
                    status=status, phase=phase)


def after_a_call(
    demo, *, going_on_to: Phase, status: RunStatus = RunStatus.RUNNING
) -> tuple[Run, DjangoTeamBudget, DjangoRunStore]:
    """A leased run whose model call (HELD reserved, COST spent) is checkpointed through
    the run store, the run then in ``going_on_to``."""
    run, budget = leased_run(demo)
    store = DjangoRunStore(run, budget.owner, team_budget=budget)
    assert budget.reserve(HELD)
    budget.settle(HELD, COST)
    store.commit(going_on(run, going_on_to, status))
    return run, budget, store


def test_the_checkpoint_before_a_model_call_holds_for_it_and_the_call_needs_no_statement(
        demo, no_workers):
    today = timezone.now().date()
    # the slice's first call reserved on its own; then a tool's result is in: the model next
    run, budget, store = after_a_call(demo, going_on_to=Phase.REASON)
    ahead = HELD * NEXT_HOLD_HEADROOM
    assert held_by(run) == (ahead, today)
    row = spend(demo["team"])
    assert (row.reserved_usd, row.spent_usd) == (ahead, COST)

    with CaptureQueriesContext(connection) as queries:
        assert budget.reserve(HELD + Decimal("0.01"))  # covered by the hold: no statement
    assert len(queries) == 0
    budget.settle(HELD + Decimal("0.01"), COST)
    store.commit(going_on(run, Phase.DECIDE))  # a tool call to decide on: no model next
    assert held_by(run) == (0, None)  # what was held is given back, the cost counted
    row = spend(demo["team"])
    assert (row.reserved_usd, row.spent_usd) == (0, 2 * COST)


def test_a_hold_no_call_used_is_given_back_by_the_next_checkpoint(demo, no_workers):
    run, budget, store = after_a_call(demo, going_on_to=Phase.REASON)
    assert held_by(run)[0] > 0
    # the reply came from the response cache: no reservation, nothing spent
    store.commit(going_on(run, Phase.DECIDE))
    assert held_by(run) == (0, None)
    row = spend(demo["team"])
    assert (row.reserved_usd, row.spent_usd) == (0, COST)


def test_a_next_hold_past_the_team_budget_holds_nothing_and_the_call_reserves_itself(
        demo, no_workers):
    team = demo["team"]
    team.daily_budget_usd = Decimal("0.30")  # room for HELD, not for HELD and a quarter
    team.save(update_fields=["daily_budget_usd"])
    run, budget, store = after_a_call(demo, going_on_to=Phase.REASON)
    assert held_by(run) == (0, None)
    assert spend(team).reserved_usd == 0
    assert budget.reserve(Decimal("0.20"))  # on its own, as before: it fits
    assert held_by(run) == (Decimal("0.20"), timezone.now().date())
    assert not budget.reserve(Decimal("0.10"))  # 0.04 spent + 0.20 held + 0.10 > 0.30


def test_a_run_that_pauses_or_ends_holds_nothing_for_later(demo, no_workers):
    run, _, _ = after_a_call(demo, going_on_to=Phase.REASON,
                             status=RunStatus.SUCCEEDED)  # the answer was final
    assert held_by(run) == (0, None)
    assert spend(demo["team"]).reserved_usd == 0


def test_a_cancel_after_the_next_hold_gives_it_back_once(demo, no_workers):
    run, budget, store = after_a_call(demo, going_on_to=Phase.REASON)
    services.cancel_run(run_id=run.pk, user=demo["operator"])
    assert held_by(run) == (0, None)
    assert spend(demo["team"]).reserved_usd == 0
    # the worker's call, made on the hold it still thought it had, is counted, not released
    assert budget.reserve(HELD)
    budget.settle(HELD, COST)
    with pytest.raises(LeaseLost):
        store.commit(going_on(run, Phase.DECIDE))
    row = spend(demo["team"])
    assert (row.reserved_usd, row.spent_usd) == (0, 2 * COST)


def test_the_retrieval_checkpoint_holds_for_the_first_call_once_the_agent_is_known(
        demo, no_workers):
    """A slice's first call has no earlier call to size its hold on: it reserves on its own.
    Once this process saw one, the next run's checkpoint before its first call holds what
    that first call reserved, plus a quarter, and the call needs no statement."""
    from runs import budgets

    first, _ = leased_run(demo)
    agent_id = first.agent_id
    budgets._first_calls.pop(agent_id, None)
    budget = DjangoTeamBudget(demo["team"].pk, first.pk, "worker-a", agent_id=agent_id)
    assert budget.next_hold() == 0  # nothing known yet: no hold before the first call
    assert budget.reserve(HELD)

    run = services.submit_run(team=demo["team"], agent_slug=first.agent.slug,
                              task_input={"message": "Where is my order 1077?"}, user_id=None)
    run = lifecycle.start(run.pk, "worker-b")
    second = DjangoTeamBudget(demo["team"].pk, run.pk, "worker-b", agent_id=agent_id)
    store = DjangoRunStore(run, "worker-b", team_budget=second)
    store.commit(going_on(run, Phase.REASON))  # the retrieval step's checkpoint
    assert held_by(run) == (HELD * NEXT_HOLD_HEADROOM, timezone.now().date())
    with CaptureQueriesContext(connection) as queries:
        assert second.reserve(HELD)
    assert len(queries) == 0
