"""The tiering benchmark's section of ``latest.md``: the declared error model, the
calibration, the operating point, the cost/success curve, and what to expect in earnest."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from .eval.generate import CATEGORIES
from .report import Section, Target, fmt, svg_bars, svg_reliability, svg_series

if TYPE_CHECKING:
    from .tiering import Outcome
    from .tiering_passes import Pass

section = Section("Tiering: calibrated threshold, cost and success on the evaluation set")
REAL_MODELS = {"sim-small": "gpt-4o-mini", "sim-large": "gpt-4o"}


def write(o: Outcome, metrics: dict[str, float], targets: dict[str, Target]) -> None:
    s = section
    s.lines.clear()
    _how(s, o)
    _error_model(s)
    t, g = o.tiered_op, o.large_op
    why = {}
    if metrics["cost_reduction_vs_large_only"] < targets["cost_reduction_vs_large_only"].value:
        why["cost_reduction_vs_large_only"] = (
            f"{metrics['large_model_share_of_calls_tiered']:.0%} of tiered model calls went to "
            f"sim-large at threshold {o.operating:.2f}")
    if metrics["confidently_wrong_rate"] > targets["confidently_wrong_rate"].value:
        why["confidently_wrong_rate"] = _wrong_why(t)
    if metrics["success_rate_tiered"] < targets["success_rate_tiered"].value:
        why["success_rate_tiered"] = "see the failures below"
    s.add(f"**At the operating point chosen by calibration (threshold {o.operating:.2f})**, "
          f"on the {len(o.scored_tasks)} scored tasks:")
    s.verdicts(metrics, targets, why)
    s.table(["", "tiered", "large only"], [
        ["success rate", metrics["success_rate_tiered"], metrics["success_rate_large_only"]],
        ["confidently wrong (share of acting decisions)", metrics["confidently_wrong_rate"],
         metrics["confidently_wrong_rate_large_only"]],
        ["runs with a confidently wrong decision", len(t.confidently_wrong_runs()),
         len(g.confidently_wrong_runs())],
        ["runs waiting for a human", sum(r["got"].status == "waiting_human" for r in t.runs),
         sum(r["got"].status == "waiting_human" for r in g.runs)],
        ["total cost (USD)", metrics["cost_tiered_usd"], metrics["cost_large_only_usd"]],
        ["model calls (+ agreement samples)", _calls(t), _calls(g)],
    ])
    wrong_t, acting_t = t.confidently_wrong()
    ok_t, ok_g = sum(r["ok"] for r in t.runs), sum(r["ok"] for r in g.runs)
    s.add(f"These are small samples, so each rate has a wide margin (95 % Wilson intervals): "
          f"success tiered {ok_t}/{t.n} ({_interval(ok_t, t.n)}), large-only {ok_g}/{g.n} "
          f"({_interval(ok_g, g.n)}); confidently wrong {wrong_t}/{acting_t} acting decisions "
          f"({_interval(wrong_t, acting_t)}). A target met or missed by a task or two is "
          "within that noise; the error model's draws are fixed (deterministic), so another "
          "run gives the same figures, but a different split or set would move them.")
    _calibration(s, o, metrics)
    _curve(s, o)
    _categories(s, t, g)
    _failures(s, o, t, g)
    _expectations(s, o, metrics)
    _token_estimates(s, o, metrics)


def _how(s: Section, o: Outcome) -> None:
    from . import deploy

    s.add(f"**Mode:** {deploy.mode_label()}. **Set:** {len(o.tasks)} tasks "
          "(`bench/eval/tasks.jsonl`), split by a seeded hash stratified by category "
          f"(`bench/eval/split.py`): **{len(o.calibration_tasks)} to calibrate on, "
          f"{len(o.scored_tasks)} scored**. **Signals:** {', '.join(o.signals)} "
          "(combined by the engine as their minimum, `agentdesk/runtime/confidence.py`)"
          + ("; the simulator's tiers are profiled as returning logprobs and as "
             "prompted-tool models, since OpenAI returns no logprobs for native tool calls"
             if "logprobs" in o.signals else "") + ". "
          "**How:** (1) the calibration part runs with sim-small deciding alone (threshold "
          "0, no large tier); each of its acting decisions (tool call or final answer; "
          "questions to the operator always reach a human and are not labelled) is judged "
          "against the task's expected outcome (`bench/eval/judge.py`, standing in for the "
          "operators' labels) → `agentdesk.runtime.calibration.calibrate` with the policy's "
          f"target ({o.target:.0%}) picks the threshold; (2) the scored part runs at the "
          "calibrated threshold, tiered and large-only (sim-large in both tiers), same "
          "threshold and signals; (3) the curve: thresholds 0.50–0.95 (step 0.05), both "
          "policies, on a stratified half of the scored part. Each pass runs on a team and "
          "a response-cache namespace of its own; runs via `submit_run` + "
          "`runs.execution.advance`, the simulator in its own process over HTTP at zero "
          "latency. **Success** = final status, escalation reason, refunds issued, the refund "
          "proposed for approval and the expected answer text all match (a confidently wrong "
          "answer or action is a failure; an escalation succeeds only where expected). "
          "**Confidently wrong rate** = acting decisions at or above the threshold that were "
          "wrong ÷ all acting decisions (the calibration's definition), over both tiers. "
          "**Cost** = Σ `Run.cost_usd` (samples included).")


def _error_model(s: Section) -> None:
    from agentdesk.llmsim.brains.ambiguity import AMBIGUITY_RULES
    from agentdesk.llmsim.error_model import (
        UNSURE_CONFIDENCE,
        ErrorModel,
    )
    from agentdesk.llmsim.models import MODELS

    errors = ErrorModel.with_small_error_rate()
    s.add("**Simulator tiers** (prices in USD per 1M tokens, from the real price lists):")
    s.table(["tier", "priced as", "reads", "input", "cached input", "output"],
            [[m.name, REAL_MODELS.get(m.name, "?"),
              "keywords" if m.quality.name == "BASIC" else "carefully",
              float(m.prices.input_per_million), float(m.prices.cached_input_per_million),
              float(m.prices.output_per_million)] for m in MODELS.values()])
    hard = ", ".join(f"*{r.name}*" for r in AMBIGUITY_RULES if r.misleads)
    b, g = errors.basic, errors.strong
    s.add("**The simulator's declared error model** (`agentdesk/llmsim/error_model.py`, fixed "
          "before this was measured; the simulator reads each conversation and never sees "
          f"the expected outcomes). *Hard* tasks: {hard} — sim-small's keyword reading can be "
          f"wrong there. On a hard (or hedged) task sim-small's honest reliability is "
          f"{UNSURE_CONFIDENCE}.")
    s.table(["", "sim-small", "sim-large"], [
        ["confident errors: hard tasks where the tier overlooks the difficulty and acts "
         "on its reading as if sure (per task)", f"{b.confident_error_rate:.0%}",
         f"{g.confident_error_rate:.0%}"],
        ["self-report: overstatement toward 1 / noise sd (±2.5 sd)",
         f"{b.overstatement} / {b.self_report_sd}", f"{g.overstatement} / {g.self_report_sd}"],
        ["logprobs: noise sd around the real reliability", b.logprob_sd, g.logprob_sd],
        ["logprobs show a confident error", f"{b.logprob_shows_error:.0%}", "—"],
        ["a sample (temperature T) diverges: hard / hedged / clear, × min(T, 1)",
         " / ".join(f"{b.divergence[k]:.2f}" for k in b.divergence),
         " / ".join(f"{g.divergence[k]:.2f}" for k in g.divergence)],
    ])


def _calibration(s: Section, o: Outcome, metrics: dict[str, float]) -> None:
    from agentdesk.runtime.calibration import Label, calibrate

    cal = o.calibration
    acting = o.labelled.acting()
    s.add(f"**Calibration** on {cal.count} labels from the calibration part "
          f"({sum(not d.correct for d in acting)} wrong): ECE **{fmt(cal.ece or 0.0)}**; "
          + (f"threshold **{cal.threshold:.2f}**, interval {cal.threshold_interval[0]:.2f}–"
             f"{cal.threshold_interval[1]:.2f} (point estimate ≤ target … 95 % Wilson upper "
             f"bound ≤ target), confidently wrong {cal.confidently_wrong_rate:.2%} in "
             f"sample, escalation rate {cal.escalation_rate:.0%}. "
             if cal.threshold is not None else
             f"**no threshold** — the policy operates at {o.operating:.2f}. ")
          + f"_{cal.reason}_")
    bins = [(b.lower, b.upper, b.count, b.mean_confidence, b.accuracy) for b in cal.bins]
    s.add(svg_reliability(bins, o.operating))
    rows = []
    for name in ("self_report", "logprobs", "agreement"):
        labels = [Label(d.signals[name], d.correct) for d in acting
                  if d.signals.get(name) is not None]
        if not labels:
            continue
        one = calibrate(labels, o.target)
        rows.append([name, len(labels), fmt(one.ece or 0.0),
                     f"{one.threshold:.2f}" if one.threshold is not None else "none",
                     f"{one.escalation_rate:.0%}" if one.escalation_rate is not None else "—"])
    rows.append(["combined (min)", cal.count, fmt(cal.ece or 0.0),
                 f"{cal.threshold:.2f}" if cal.threshold is not None else "none",
                 f"{cal.escalation_rate:.0%}" if cal.escalation_rate is not None else "—"])
    s.add("Each signal calibrated on its own (same labels):")
    s.table(["signal", "labels", "ECE", "threshold", "escalation rate"], rows)


def _curve(s: Section, o: Outcome) -> None:
    rows, success_t, success_g, reduction, wrong = [], [], [], [], []

    def row(label: str, t: Pass, g: Pass) -> list[str]:
        w, n = t.confidently_wrong()
        wg, ng = g.confidently_wrong()
        red = float(1 - t.cost / g.cost) if g.cost else 0.0
        return [label, f"{t.success:.1%}", f"{g.success:.1%}", f"{red:.1%}",
                f"{w / max(1, n):.2%}", f"{wg / max(1, ng):.2%}", f"{t.escalated:.0%}",
                f"{g.escalated:.0%}"]

    for threshold, t in o.tiered.items():
        g = o.large[threshold]
        w, n = t.confidently_wrong()
        x = threshold * 100
        success_t.append((x, t.success * 100))
        success_g.append((x, g.success * 100))
        reduction.append((x, (float(1 - t.cost / g.cost) if g.cost else 0.0) * 100))
        wrong.append((x, w / max(1, n) * 100))
        rows.append(row(f"{threshold:.2f}", t, g))
    rows.append(row(f"**{o.operating:.2f} calibrated** (all {len(o.scored_tasks)} scored)",
                    o.tiered_op, o.large_op))
    s.add(f"**Cost/success curve**, tiered vs large-only at the same threshold, on a "
          f"stratified half of the scored part ({len(o.curve_tasks)} tasks, a sample to keep "
          "the run short; the last row is the operating point on the whole scored part). "
          "Agreement samples differ from pass to pass, as a real model's would, so "
          "neighbouring thresholds also differ by a task or two of sampling noise:")
    s.table(["threshold", "success tiered", "success large-only", "cost reduction",
             "confidently wrong tiered", "… large-only", "waiting human tiered",
             "… large-only"], rows)
    band = o.calibration.threshold_interval
    shaded = (band[0] * 100, band[1] * 100) if band else None
    s.add(svg_series({"success tiered %": success_t, "success large-only %": success_g,
                      "cost reduction %": reduction}, "threshold × 100", "%", shaded))
    target = [(x, o.target * 100) for x, _ in wrong]
    s.add(svg_series({"confidently wrong, tiered (% of acting decisions)": wrong,
                      f"target {o.target:.0%}": target}, "threshold × 100", "%", shaded))
    s.add("The shaded band is the calibration interval.")


def _categories(s: Section, t: Pass, g: Pass) -> None:
    cats = sorted({r["task"]["category"] for r in t.runs},
                  key=lambda c: -sum(r["task"]["category"] == c for r in t.runs))
    rows, cost_t, cost_g = [], [], []
    uses_large = {rid for rid, steps in t.steps.items()
                  if any(st["model"] == "sim-large" for st in steps)}
    for cat in cats:
        tr = [r for r in t.runs if r["task"]["category"] == cat]
        gr = [r for r in g.runs if r["task"]["category"] == cat]
        ct = float(sum(r["got"].cost_usd for r in tr)) * 1000
        cg = float(sum(r["got"].cost_usd for r in gr)) * 1000
        cost_t.append(ct)
        cost_g.append(cg)
        rows.append([cat, CATEGORIES.get(cat, ""), len(tr),
                     f"{sum(r['ok'] for r in tr)}/{len(tr)}",
                     f"{sum(r['ok'] for r in gr)}/{len(gr)}",
                     sum(r["run_id"] in uses_large for r in tr), ct, cg])
    s.add("Per category at the operating point (cost in milli-USD):")
    s.table(["category", "what it checks", "tasks", "ok tiered", "ok large-only",
             "used sim-large", "cost tiered", "cost large-only"], rows)
    s.add(svg_bars(cats, {"tiered": cost_t, "large only": cost_g}, " m$"))


def _failures(s: Section, o: Outcome, t: Pass, g: Pass) -> None:
    wrong = t.confidently_wrong_runs()
    if wrong:
        s.add("Scored runs with a confidently wrong decision at the operating point (tiered):")
        s.table(["task", "category", "message", "outcome"],
                [[r["task"]["id"], r["task"]["category"], r["task"]["message"][:70],
                  (r["diff"] or "matched")[:100].replace("|", "/")] for r in wrong])
    failures = [("tiered", r) for r in t.runs if not r["ok"]] + \
        [("large-only", r) for r in g.runs if not r["ok"]]
    if failures:
        s.add("Scored tasks not matching their expected outcome at the operating point:")
        s.table(["policy", "task", "category", "message", "difference"],
                [[p, r["task"]["id"], r["task"]["category"], r["task"]["message"][:70],
                  r["diff"][:110].replace("|", "/")] for p, r in failures[:40]])


def _expectations(s: Section, o: Outcome, metrics: dict[str, float]) -> None:
    s.add("**What comes from the simulator, and what to expect in earnest.** Every rate in "
          "this section — success, cost reduction, confidently wrong rate, ECE, the "
          "threshold — is a consequence of the simulator's *declared* error model above "
          f"(sim-small confidently wrong on {metrics['llmsim_small_confident_error_rate']:.0%}"
          " of hard tasks, self-report overstated and noisy, logprobs and samples more "
          "informative in the stated ways) and of this set's mix (share of hard tasks). "
          "The prices are real list prices, so the cost ratio is right *for this mix and "
          "these error rates*. A real deployment should expect: a different mix (its own "
          "share of hard requests decides the cost reduction); a small model whose "
          "confident errors are neither this rare nor this independent of the signals "
          "(logprobs and sample agreement fail together on a shared misconception more "
          "often than here); self-reports that may be even less informative; and a "
          "threshold that has to be calibrated from its own operators' labels — the "
          "console's calibration page does this per agent and tier, and with a 2 % target "
          "it needs at least 189 labels before it can suggest anything (the Wilson bound "
          "of 0 wrong in n). One threshold serves both tiers in a policy: raising it for "
          "sim-small also sends sim-large's less sure answers to a human"
          + (f"; and with k = {o.agreement_samples} samples, agreement takes only the "
             f"values 0, 1/{o.agreement_samples}, …, 1, so a threshold above "
             f"{(o.agreement_samples - 1) / o.agreement_samples:.2f} demands unanimity — "
             "one diverging sample then sends a decision up, even sim-large's"
             if "agreement" in o.signals else "")
          + ". Labels here are "
          "judged on every decision (a full review); operators' labels are the escalated "
          "decisions plus a review sample of confident ones, so they need longer to gather.")


def _token_estimates(s: Section, o: Outcome, metrics: dict[str, float]) -> None:
    from agentdesk.llmsim.models import MODELS

    from .tiering import token_estimate_ratios

    if "token_estimate_ratio_p50" not in metrics:
        return
    t, g = o.tiered_op, o.large_op
    s.add(f"Prompt-token estimate ÷ reported, over {len(token_estimate_ratios(t, g))} model "
          f"calls of both passes at the operating point: p50 "
          f"**{metrics['token_estimate_ratio_p50']}**, p95 "
          f"**{metrics['token_estimate_ratio_p95']}** (tokenizers: "
          + ", ".join(f"{m} {o.tokenizers.get(m) or 'none known'}" for m in MODELS)
          + "). Where the model's encoding is not known the estimate is the byte bound the "
          "pre-call checks reserve (`agentdesk/runtime/tokens.py`), so a ratio above 1 is "
          "the price of never crossing a ceiling.")


def _interval(k: int, n: int) -> str:
    from agentdesk.runtime.calibration import wilson_upper

    if n == 0:
        return "—"
    lower = 1 - wilson_upper(n - k, n)
    return f"{lower:.1%}–{wilson_upper(k, n):.1%}"


def _calls(p: Pass) -> str:
    calls = Counter(p.calls())
    return ", ".join(f"{k} {v}" for k, v in sorted(calls.items()) if v)


def _wrong_why(t: Pass) -> str:
    wrong = [d for d in t.acting() if not d.correct and d.confidence is not None
             and d.confidence >= t.threshold - 1e-9]
    by = Counter(d.model for d in wrong)
    return "confidently wrong decisions by " + ", ".join(f"{m}: {n}" for m, n in by.items())


