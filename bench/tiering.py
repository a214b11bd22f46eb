"""Cost-aware tiering on the evaluation set, measured honestly: calibrate, then score.

The set (``bench/eval/tasks.jsonl``) is split in two (``eval/split.py``: a seeded hash,
stratified by category). Everything runs through ``submit_run`` and
``runs.execution.advance`` (the Celery task's code) in this process, against the
simulator in a process of its own over HTTP at zero latency:

1. **Labels.** The *calibration* part runs with sim-small deciding alone (threshold 0, no
   large tier). Every decision that acts (a tool call or a final answer) is judged against
   the task's expected outcome (``eval/judge.py``, the operator's stand-in): one label
   ``(confidence, correct)`` per decision.
2. **Calibration.** ``agentdesk.runtime.calibration.calibrate`` with the default policy's
   target (confidently wrong actions ≤ 2 %) picks the operating threshold.
3. **Scoring.** The *scored* part runs at the calibrated threshold twice: tiered
   (sim-small, sim-large when unsure, a human when that is unsure too) and large-only
   (sim-large in both tiers), same threshold, same signals — the operating point. The
   cost/success curve runs at every threshold 0.50, 0.55, …, 0.95, tiered and large-only,
   on a stratified half of the scored part (the same split again): a sample, to keep the
   benchmark near a minute. No operator answers: a run that escalates stays
   ``waiting_human`` and counts as a success only where the task expects that escalation.
   A confidently wrong answer or action is a failure (the run's outcome does not match).

Confidence signals: ``BENCH_TIERING_SIGNALS`` (comma-separated, default all three:
self-report, logprobs, agreement). With logprobs the simulator's tiers are profiled as
returning them and as prompted-tool models (OpenAI returns no logprobs for native tool
calls, so a deployment wanting that signal on tool calls uses the prompted protocol).
The simulator's error rates are its declared ones (``agentdesk/llmsim/error_model.py``),
fixed before measuring; ``LLMSIM_SMALL_CONFIDENT_ERROR_RATE`` changes sim-small's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from . import deploy, tiering_report, workload
from .eval.split import split
from .report import Target, percentile
from .tiering_passes import Pass, run_pass

section = tiering_report.section
SIGNALS_ENV = "BENCH_TIERING_SIGNALS"
ALL_SIGNALS = ("self_report", "logprobs", "agreement")
GRID = tuple(round(0.50 + 0.05 * i, 2) for i in range(10))
TARGET_REDUCTION = 0.60
SUCCESS_SLACK = 0.01
FALLBACK_THRESHOLD = 0.99
"""Where the policy operates when calibration finds no threshold (the top of its grid)."""


def targets(metrics: dict[str, float]) -> dict[str, Target]:
    return {
        "cost_reduction_vs_large_only": Target(">=", TARGET_REDUCTION),
        "success_rate_tiered": Target(
            ">=", round(metrics.get("success_rate_large_only", 0.0) - SUCCESS_SLACK, 4)),
        "confidently_wrong_rate": Target(
            "<=", metrics.get("confidently_wrong_target", 0.02)),
    }


@dataclass
class Outcome:
    """Everything the report needs."""

    tasks: list[dict[str, Any]]
    calibration_tasks: list[dict[str, Any]]
    scored_tasks: list[dict[str, Any]]
    curve_tasks: list[dict[str, Any]]
    signals: list[str]
    target: float
    labelled: Pass
    calibration: Any
    operating: float
    tiered_op: Pass
    large_op: Pass
    tiered: dict[float, Pass]  # the curve, on ``curve_tasks``
    large: dict[float, Pass]
    tokenizers: dict[str, str]
    agreement_samples: int


def signals() -> list[str]:
    raw = os.environ.get(SIGNALS_ENV, "").strip()
    chosen = [s.strip() for s in raw.split(",") if s.strip()] if raw else list(ALL_SIGNALS)
    unknown = set(chosen) - set(ALL_SIGNALS)
    if unknown:
        raise ValueError(f"{SIGNALS_ENV}: unknown signal(s) {sorted(unknown)}")
    return chosen


def run() -> dict[str, float]:
    from agentdesk.runtime.calibration import Label, calibrate

    chosen = signals()
    env = deploy.in_process("tiering", latency_scale=0.0)
    try:
        from runs.models import ModelProfile, Policy

        if "logprobs" in chosen:
            ModelProfile.objects.filter(name__in=["sim-small", "sim-large"]).update(
                logprobs=True, tool_calling="prompted")
        default = Policy.objects.get(name="support-default")
        target, samples = default.confidently_wrong_target, default.agreement_samples
        tasks = workload.load_tasks()
        calibration_tasks, scored_tasks = split(tasks)
        labelled = run_pass("calibration", 0.0, calibration_tasks, signals=chosen,
                            small="sim-small", large="")
        labels = [Label(d.confidence, d.correct) for d in labelled.acting()
                  if d.confidence is not None]
        calibration = calibrate(labels, target)
        operating = calibration.threshold if calibration.threshold is not None \
            else FALLBACK_THRESHOLD
        tiered_op = run_pass("tiered", operating, scored_tasks, signals=chosen)
        large_op = run_pass("large-only", operating, scored_tasks, signals=chosen,
                            small="sim-large", large="sim-large")
        curve_tasks, _ = split(scored_tasks)
        tiered, large = {}, {}
        for threshold in GRID:
            tiered[threshold] = run_pass(f"curve-tiered-{threshold:.2f}", threshold,
                                         curve_tasks, signals=chosen)
            large[threshold] = run_pass(f"curve-large-{threshold:.2f}", threshold, curve_tasks,
                                        signals=chosen, small="sim-large", large="sim-large")
        tokenizers = dict(ModelProfile.objects.values_list("name", "tokenizer"))
    finally:
        env.close()
    outcome = Outcome(tasks, calibration_tasks, scored_tasks, curve_tasks, chosen, target,
                      labelled, calibration, operating, tiered_op, large_op, tiered, large,
                      tokenizers, samples)
    metrics = summarise(outcome)
    tiering_report.write(outcome, metrics, targets(metrics))
    return metrics


def summarise(o: Outcome) -> dict[str, float]:
    from agentdesk.llmsim.error_model import ErrorModel

    t, g = o.tiered_op, o.large_op
    wrong_t, acting_t = t.confidently_wrong()
    wrong_g, acting_g = g.confidently_wrong()
    cal = o.calibration
    calls = t.calls()
    model_calls = {k: v for k, v in calls.items() if not k.endswith("samples")}
    metrics: dict[str, float] = {
        "cost_reduction_vs_large_only": round(float(1 - t.cost / g.cost) if g.cost else 0.0, 4),
        "success_rate_tiered": round(t.success, 4),
        "success_rate_large_only": round(g.success, 4),
        "confidently_wrong_rate": round(wrong_t / max(1, acting_t), 4),
        "confidently_wrong_rate_large_only": round(wrong_g / max(1, acting_g), 4),
        "confidently_wrong_runs_tiered": round(len(t.confidently_wrong_runs()) / t.n, 4),
        "confidently_wrong_target": o.target,
        "calibration_threshold": o.operating,
        "calibration_labels": cal.count,
        "eval_tasks": len(o.tasks),
        "eval_tasks_scored": len(o.scored_tasks),
        "cost_tiered_usd": round(float(t.cost), 6),
        "cost_large_only_usd": round(float(g.cost), 6),
        "escalation_rate_tiered": round(t.escalated, 4),
        "escalation_rate_large_only": round(g.escalated, 4),
        "large_model_share_of_calls_tiered": round(
            model_calls.get("sim-large", 0) / max(1, sum(model_calls.values())), 4),
        "llmsim_small_confident_error_rate": ErrorModel.with_small_error_rate()
        .basic.confident_error_rate,
        **_estimate_ratios(t, g),
    }
    if cal.ece is not None:
        metrics["calibration_ece"] = round(cal.ece, 4)
    if cal.threshold_interval is not None:
        metrics["calibration_threshold_low"] = cal.threshold_interval[0]
        metrics["calibration_threshold_high"] = cal.threshold_interval[1]
        metrics["calibration_escalation_rate"] = round(cal.escalation_rate, 4)
    return metrics


def token_estimate_ratios(*passes: Pass) -> list[float]:
    """Estimated ÷ reported prompt tokens of every model call that reported its usage."""
    return [args["prompt_tokens_estimated"] / s["tokens_in"]
            for p in passes for run_steps in p.steps.values() for s in run_steps
            if s["tokens_in"] and "prompt_tokens_estimated" in (args := s["args"] or {})
            and not args.get("usage_missing")]


def _estimate_ratios(*passes: Pass) -> dict[str, float]:
    ratios = token_estimate_ratios(*passes)
    if not ratios:
        return {}
    return {"token_estimate_ratio_p50": round(percentile(ratios, 50), 4),
            "token_estimate_ratio_p95": round(percentile(ratios, 95), 4)}
