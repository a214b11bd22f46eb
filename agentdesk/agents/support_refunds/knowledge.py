"""Retrieval over the shipped markdown policy documents.

A tiny term-overlap ranker is enough for a handful of documents and keeps retrieval
deterministic; a real deployment swaps in its own search behind the same function.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

KNOWLEDGE_DIR = Path(__file__).parent / "knowledge"
WORD = re.compile(r"[a-z0-9]+")


@cache
def documents() -> list[dict[str, str]]:
    docs = []
    for path in sorted(KNOWLEDGE_DIR.glob("*.md")):
        text = path.read_text()
        title = text.splitlines()[0].lstrip("# ").strip()
        body = " ".join(line for line in text.splitlines()[1:] if line.strip())
        docs.append({"source": path.name, "title": title, "text": body})
    return docs


def search(query: str, limit: int = 2) -> list[dict[str, object]]:
    terms = set(WORD.findall(query.lower()))
    scored = []
    for doc in documents():
        words = WORD.findall((doc["title"] + " " + doc["text"]).lower())
        score = sum(1 for w in words if w in terms or w.rstrip("s") in terms)
        if score:
            scored.append({**doc, "score": score})
    scored.sort(key=lambda d: (-int(d["score"]), d["source"]))
    return scored[:limit]
