"""Cost-aware tiering on the evaluation set: the default policy against the large model only.

Every task of ``bench/eval/tasks.jsonl`` runs twice on a fresh database, through
``submit_run`` and ``runs.execution.advance`` with the simulator at zero latency: once on
the default tiered policy (sim-small; sim-large when the small model is unsure; a human
when the large one is unsure too), once on a copy whose small and large model are both
sim-large. No operator answers: a run that escalates stays ``waiting_human`` and counts as
a success only when the task expects that escalation. Cost is the sum of the runs' costs
(the app's own accounting: ``usage`` × the price table).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from . import deploy, workload
from .eval.generate import CATEGORIES
from .report import Section, Target, fmt, percentile, svg_bars

section = Section("Tiering: cost and success on the evaluation set")
TARGETS = {"cost_reduction_vs_large_only": Target(">=", 0.60)}
REAL_MODELS = {"sim-small": "gpt-4o-mini", "sim-large": "gpt-4o"}
TARGET_REDUCTION = 0.60
EVAL_THREADS = 4


def targets(metrics: dict[str, float]) -> dict[str, Target]:
    """Tiered success must not fall below large-only success on the same tasks."""
    return {**TARGETS,
            "success_rate_tiered": Target(">=", metrics.get("success_rate_large_only", 0.0))}


def _one(team, task: dict[str, Any]) -> dict[str, Any]:
    from django.db import connection

    try:
        run_id = workload.submit(team, task["message"])
        workload.drive(run_id)
        got = workload.outcome(run_id)
    finally:
        connection.close()  # this thread's connection; the pool's threads come and go
    ok, diff = workload.matches(task["expected"], got)
    return {"task": task, "run_id": run_id, "ok": ok, "diff": diff, "got": got}


def _evaluate(name: str, team, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every task under one policy: in a few threads (runs are independent), except the
    backend-down tasks, which run one at a time on a closed circuit breaker — each makes
    three failed tries, and two at once would open the lookup tool's breaker (five failures)
    for the tasks around them: the breaker working, not what this set measures.

    Each pass gets a response-cache namespace of its own: the tiered pass asks sim-large
    some of the very requests the large-only pass makes, and a hit across passes would
    make the second pass look cheaper than it is.
    """
    from django.conf import settings

    from runs.breakers import reset_breakers

    base = settings.CACHES["default"].setdefault("KEY_PREFIX", "")
    settings.CACHES["default"]["KEY_PREFIX"] = f"{base}-{name}"  # for the pool's new threads
    reset_breakers()
    try:
        plain = [t for t in tasks if t["category"] not in workload.FAULTY]
        with ThreadPoolExecutor(EVAL_THREADS) as pool:
            done = list(pool.map(lambda task: _one(team, task), plain))
        faulty = [t for t in tasks if t["category"] in workload.FAULTY]
        with ThreadPoolExecutor(1) as pool:
            for task in faulty:
                reset_breakers()
                done.append(pool.submit(_one, team, task).result())
    finally:
        settings.CACHES["default"]["KEY_PREFIX"] = base
    order = {task["id"]: i for i, task in enumerate(tasks)}
    return sorted(done, key=lambda r: order[r["task"]["id"]])


def _model_steps(team) -> dict[int, list[dict[str, Any]]]:
    from runs.models import Step

    by_run: dict[int, list[dict[str, Any]]] = defaultdict(list)
    rows = Step.objects.filter(run__team=team, kind="model").order_by("run_id", "index")
    for row in rows.values("run_id", "index", "tier", "model", "confidence", "result",
                           "cost_usd", "args", "tokens_in"):
        by_run[row["run_id"]].append(row)
    return by_run


def run() -> dict[str, float]:
    env = deploy.in_process("tiering", latency_scale=0.0)
    try:
        from runs.models import ModelProfile, Policy

        tasks = workload.load_tasks()
        tiered_team = workload.make_team("bench-tiered")
        large_team = workload.make_team("bench-large-only", large_only=True)
        threshold = Policy.objects.get(name="support-default").confidence_threshold
        tiered = _evaluate("tiered", tiered_team, tasks)
        large = _evaluate("large-only", large_team, tasks)
        steps_tiered = _model_steps(tiered_team)
        steps_large = _model_steps(large_team)
        tokenizers = dict(ModelProfile.objects.values_list("name", "tokenizer"))
    finally:
        env.close()
    return _summarise(tasks, tiered, large, steps_tiered, steps_large, threshold, tokenizers)


def _summarise(tasks, tiered, large, steps_tiered, steps_large, threshold,
               tokenizers) -> dict[str, float]:
    n = len(tasks)
    cost_t = sum((r["got"].cost_usd for r in tiered), Decimal("0"))
    cost_l = sum((r["got"].cost_usd for r in large), Decimal("0"))
    ok_t = sum(r["ok"] for r in tiered) / n
    ok_l = sum(r["ok"] for r in large) / n
    reduction = float(1 - cost_t / cost_l) if cost_l else 0.0
    calls = Counter(s["model"] for steps in steps_tiered.values() for s in steps)
    calls_l = Counter(s["model"] for steps in steps_large.values() for s in steps)
    used_large = {rid for rid, steps in steps_tiered.items()
                  if any(s["model"] == "sim-large" for s in steps)}
    metrics = {
        "cost_reduction_vs_large_only": round(reduction, 4),
        "success_rate_tiered": round(ok_t, 4),
        "success_rate_large_only": round(ok_l, 4),
        "eval_tasks": n,
        "cost_tiered_usd": round(float(cost_t), 6),
        "cost_large_only_usd": round(float(cost_l), 6),
        "escalation_rate_tiered": round(
            sum(r["got"].status == "waiting_human" for r in tiered) / n, 4),
        "large_model_share_of_calls_tiered": round(
            calls["sim-large"] / max(1, sum(calls.values())), 4),
        **_estimate_ratios(steps_tiered, steps_large),
    }
    _write_section(metrics, tasks, tiered, large, steps_tiered, steps_large, calls, calls_l,
                   used_large, threshold, tokenizers)
    return metrics


def token_estimate_ratios(*steps_by_run) -> list[float]:
    """Estimated ÷ reported prompt tokens of every model call that reported its usage."""
    return [args["prompt_tokens_estimated"] / s["tokens_in"]
            for steps in steps_by_run for run_steps in steps.values() for s in run_steps
            if s["tokens_in"] and "prompt_tokens_estimated" in (args := s["args"] or {})
            and not args.get("usage_missing")]


def _estimate_ratios(steps_tiered, steps_large) -> dict[str, float]:
    ratios = token_estimate_ratios(steps_tiered, steps_large)
    if not ratios:
        return {}
    return {"token_estimate_ratio_p50": round(percentile(ratios, 50), 4),
            "token_estimate_ratio_p95": round(percentile(ratios, 95), 4)}


def _cache_hits(steps_by_run) -> int:
    return sum(bool((s["args"] or {}).get("cache_hit")) for steps in steps_by_run.values()
               for s in steps)


def _calibration(steps_tiered, threshold) -> dict[str, int]:
    """Small-model decisions: confident, or unsure and then decided (differently?) by large."""
    stats = Counter()
    for steps in steps_tiered.values():
        for i, step in enumerate(steps):
            if step["model"] != "sim-small" or step["confidence"] is None:
                continue
            if step["confidence"] >= threshold:
                stats["confident"] += 1
                continue
            stats["unsure"] += 1
            nxt = steps[i + 1] if i + 1 < len(steps) else None
            if nxt and nxt["model"] == "sim-large" and nxt["index"] == step["index"] + 1:
                stats["unsure_then_large"] += 1
                if nxt["result"] != step["result"]:
                    stats["large_decided_differently"] += 1
    return stats


def _break_even(tiered, large, used_large) -> tuple[float, float]:
    """Share of tasks that need the large model at which the reduction is exactly 60 %."""
    pairs = list(zip(tiered, large, strict=True))
    hard = [(float(t["got"].cost_usd), float(g["got"].cost_usd)) for t, g in pairs
            if t["run_id"] in used_large]
    easy = [(float(t["got"].cost_usd), float(g["got"].cost_usd)) for t, g in pairs
            if t["run_id"] not in used_large]
    if not hard or not easy:
        return len(hard) / max(1, len(pairs)), float("nan")
    a_t, a_l = (sum(c[k] for c in hard) / len(hard) for k in (0, 1))
    b_t, b_l = (sum(c[k] for c in easy) / len(easy) for k in (0, 1))
    keep = 1 - TARGET_REDUCTION
    denominator = (a_t - b_t) - keep * (a_l - b_l)
    share = (keep * b_l - b_t) / denominator if denominator else float("nan")
    return len(hard) / len(pairs), share


def _write_section(metrics, tasks, tiered, large, steps_tiered, steps_large, calls, calls_l,
                   used_large, threshold, tokenizers) -> None:
    from agentdesk.llmsim.brains.ambiguity import AMBIGUITY_RULES, AMBIGUOUS_CONFIDENCE
    from agentdesk.llmsim.models import MODELS

    s = section
    s.lines.clear()
    s.add(f"**Mode:** {deploy.mode_label()}. **Set:** {len(tasks)} tasks "
          "(`bench/eval/tasks.jsonl`, generated by `python -m bench.eval.generate`). "
          "**How:** each task submitted with `submit_run` and advanced with "
          f"`runs.execution.advance` on a fresh database ({EVAL_THREADS} threads; backend-down "
          "tasks one at a time on a closed circuit breaker), simulator at zero latency, once "
          "per policy, each pass with a response-cache namespace of its own. "
          "Success = final status, escalation reason, refunds issued (order, amount), "
          "the refund proposed for approval and the expected answer text all match; an "
          "escalation is a success only where the task expects one. Cost = Σ `Run.cost_usd`.")
    s.add("**Simulator tiers** (prices in USD per 1M tokens, from the real price lists):")
    s.table(["tier", "priced as", "quality", "base latency", "input", "cached input", "output"],
            [[m.name, REAL_MODELS.get(m.name, "?"), m.quality.name, f"{m.base_latency_ms} ms",
              float(m.prices.input_per_million), float(m.prices.cached_input_per_million),
              float(m.prices.output_per_million)] for m in MODELS.values()])
    s.add("The tiers run the same scenario logic but read the task differently: the STRONG "
          "tier reads negations, policy questions, several order numbers and partial amounts; "
          "the BASIC tier reads keywords (first order number, any refund word = refund of the "
          f"total). The BASIC tier is calibrated: where its reading can be wrong it reports "
          f"confidence {AMBIGUOUS_CONFIDENCE} (< the policy threshold {threshold}) — rules: "
          + ", ".join(f"*{r.name}*" for r in AMBIGUITY_RULES) + ". That calibration is a "
          "modelling assumption of the simulator: a real small model is also sometimes "
          "confidently wrong, which this set does not model.")
    why = {}
    if metrics["success_rate_tiered"] < metrics["success_rate_large_only"]:
        why["success_rate_tiered"] = "tiered runs failed where large-only succeeded (below)"
    share, break_even = _break_even(tiered, large, used_large)
    if metrics["cost_reduction_vs_large_only"] < TARGET_REDUCTION:
        why["cost_reduction_vs_large_only"] = (
            f"{share:.0%} of tasks needed sim-large; the target holds up to {break_even:.0%}")
    s.verdicts(metrics, targets(metrics), why)
    s.table(["", "tiered (default policy)", "large only"], [
        ["success rate", metrics["success_rate_tiered"], metrics["success_rate_large_only"]],
        ["total cost (USD)", metrics["cost_tiered_usd"], metrics["cost_large_only_usd"]],
        ["model calls", dict(calls), dict(calls_l)],
        ["runs escalated", sum(r["got"].status == "waiting_human" for r in tiered),
         sum(r["got"].status == "waiting_human" for r in large)],
        ["response-cache hits", _cache_hits(steps_tiered), _cache_hits(steps_large)],
    ])
    s.add(f"Runs that needed sim-large in the tiered pass: {share:.0%}. Break-even: with "
          f"these per-task costs the reduction stays ≥ {TARGET_REDUCTION:.0%} while at most "
          f"**{break_even:.0%}** of the tasks need the large model (the rest is served by "
          "sim-small alone) — the number to compare with a real traffic mix.")
    cal = _calibration(steps_tiered, threshold)
    s.add(f"Calibration of sim-small in the tiered pass: {cal['confident']} confident "
          f"decisions, {cal['unsure']} unsure; {cal['unsure_then_large']} unsure ones were "
          f"re-asked of sim-large, which decided differently in "
          f"{cal['large_decided_differently']} (the rest were false alarms, paid for with a "
          "large-model call).")
    cats = sorted({t["category"] for t in tasks},
                  key=lambda c: -sum(t["category"] == c for t in tasks))
    rows, cost_t, cost_l = [], [], []
    for cat in cats:
        t_rows = [r for r in tiered if r["task"]["category"] == cat]
        l_rows = [r for r in large if r["task"]["category"] == cat]
        ct = float(sum(r["got"].cost_usd for r in t_rows)) * 1000
        cl = float(sum(r["got"].cost_usd for r in l_rows)) * 1000
        cost_t.append(ct)
        cost_l.append(cl)
        rows.append([cat, len(t_rows), f"{sum(r['ok'] for r in t_rows)}/{len(t_rows)}",
                     f"{sum(r['ok'] for r in l_rows)}/{len(l_rows)}",
                     f"{sum(r['run_id'] in used_large for r in t_rows)}", ct, cl])
    s.add("Per category (cost in milli-USD):")
    s.table(["category", "what it checks", "tasks", "ok tiered", "ok large-only",
             "used sim-large", "cost tiered", "cost large-only"],
            [[r[0], CATEGORIES.get(r[0], ""), *r[1:]] for r in rows])
    s.add(svg_bars(cats, {"tiered": cost_t, "large only": cost_l}, " m$"))
    failures = [("tiered", r) for r in tiered if not r["ok"]] + \
        [("large-only", r) for r in large if not r["ok"]]
    if failures:
        s.add("Tasks not matching their expected outcome:")
        s.table(["policy", "task", "category", "message", "difference"],
                [[p, r["task"]["id"], r["task"]["category"], r["task"]["message"][:70],
                  r["diff"][:110].replace("|", "/")] for p, r in failures[:40]])
    if "token_estimate_ratio_p50" in metrics:
        s.add(f"Prompt-token estimate ÷ reported, over "
              f"{len(token_estimate_ratios(steps_tiered, steps_large))} model calls of both "
              f"passes: p50 **{metrics['token_estimate_ratio_p50']}**, p95 "
              f"**{metrics['token_estimate_ratio_p95']}** (tokenizers: "
              + ", ".join(f"{m} {tokenizers.get(m) or 'none known'}" for m in MODELS)
              + "). Where the "
              "model's encoding is not known the estimate is the byte bound the pre-call "
              "checks reserve (`agentdesk/runtime/tokens.py`: UTF-8 bytes of the request + "
              "allowances), so a ratio above 1 is the price of never crossing a ceiling; "
              "below 1 the endpoint counted more than we estimated, and the run's later "
              "calls reserve the estimate times that ratio where it exceeds the bound.")
    s.add(f"Totals: tiered {fmt(metrics['cost_tiered_usd'])} USD vs large-only "
          f"{fmt(metrics['cost_large_only_usd'])} USD for {len(tasks)} tasks.")
