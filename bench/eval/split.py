"""The evaluation set in two parts: one to calibrate on, one to score.

Labels from the *calibration* part choose the threshold; the *scored* part measures what
that threshold does, on tasks the calibration never saw. The split is a seeded hash,
stratified by category so both parts have the same mix: within each category the tasks
are ordered by ``sha256(SEED:id)`` and alternate between the parts (the first to
calibration). The same set always splits the same way; ``BENCH_SPLIT_SEED`` picks another
split, to see how much the figures owe to this one.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from typing import Any

SEED = "agentdesk-tiering-split-1"
CALIBRATION, SCORED = "calibration", "scored"


def split(tasks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(calibration, scored)``, each in the set's own order."""
    seed = os.environ.get("BENCH_SPLIT_SEED") or SEED
    by_category: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for task in tasks:
        by_category[task["category"]].append(task)
    part: dict[str, str] = {}
    for members in by_category.values():
        ranked = sorted(members, key=lambda t: hashlib.sha256(
            f"{seed}:{t['id']}".encode()).hexdigest())
        for i, task in enumerate(ranked):
            part[task["id"]] = CALIBRATION if i % 2 == 0 else SCORED
    return ([t for t in tasks if part[t["id"]] == CALIBRATION],
            [t for t in tasks if part[t["id"]] == SCORED])
