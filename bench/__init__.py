"""AgentDesk's benchmark suite: ``make bench`` (``python -m bench [NAME ...]``).

One module per benchmark, each with ``run() -> dict[str, float]``, ``TARGETS`` and a
markdown ``section``: ``overhead`` (engine time per step), ``storage`` (database bytes per
step), ``tiering`` (a threshold calibrated on half of ``eval/tasks.jsonl``, then cost, success
and confidently wrong decisions of the tiered policy on the other half, and the curve),
``budget`` (a team's daily budget under concurrent runs), ``throughput`` (steps per
second with hundreds of runs in flight). Results: ``results/latest.json`` and ``.md``.
"""
