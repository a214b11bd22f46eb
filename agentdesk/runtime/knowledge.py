"""What an agent knows: passages found by a search over its documents.

The engine's first phase asks a ``Knowledge`` for the passages that match the task, and a
tool can ask it again through its ``ToolContext``. In production the search is the
database's own full-text engine over the agent's documents (``runs.knowledge``); here live
the interface, ``NoKnowledge``, and ``FolderKnowledge``: an in-memory index of a folder of
documents, for the test kit and for scripts that run an agent without a database.

Documents are cut into chunks the same way everywhere (``chunk_text``), so a passage an
operator sees on the escalation page is the passage the agent was given.
"""

from __future__ import annotations

import html
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

DOCUMENT_SUFFIXES = (".md", ".txt", ".html", ".htm")
CHUNK_CHARS = 900  # about 200 tokens: small enough to quote several, big enough to answer
WORD = re.compile(r"[a-z0-9]+")
_TAG = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.IGNORECASE | re.DOTALL)
_BLANK_LINES = re.compile(r"\n\s*\n")
# Words too common to tell passages apart (a short list: the full-text engines have their own).
STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how",
    "i", "if", "in", "is", "it", "my", "of", "on", "or", "our", "the", "to", "was", "what",
    "when", "where", "which", "who", "why", "will", "with", "you", "your",
})


@dataclass(frozen=True)
class Passage:
    """One chunk of one document, as the agent and the operator see it."""

    source: str  # the document's name, e.g. "refund-policy.md"
    title: str
    text: str
    score: float = 0.0

    def as_context(self) -> dict[str, Any]:
        return asdict(self)


class Knowledge(Protocol):
    def search(self, query: str, limit: int = 3) -> list[Passage]:
        """The best ``limit`` passages for ``query``, best first (none is an honest answer)."""


class NoKnowledge:
    """An agent without documents."""

    def search(self, query: str, limit: int = 3) -> list[Passage]:
        return []


@dataclass(frozen=True)
class Document:
    name: str
    title: str
    body: str  # plain text: markup removed, the title line not repeated


def read_document(name: str, raw: str) -> Document:
    """Title and plain text of a ``.md``, ``.txt`` or ``.html`` document."""
    text = raw.replace("\r\n", "\n")
    if name.lower().endswith((".html", ".htm")):
        title_match = re.search(r"<title>(.*?)</title>|<h1[^>]*>(.*?)</h1>", text, re.I | re.S)
        title = html.unescape(_TAG.sub("", next(g for g in title_match.groups() if g))) \
            if title_match else ""
        text = re.sub(r"<title>.*?</title>", "", text, flags=re.I | re.S)
        text = re.sub(r"</(p|div|h[1-6]|li|tr|section|article)>|<br\s*/?>", "\n\n", text,
                      flags=re.I)
        text = html.unescape(_TAG.sub("", text))
        lines = [line.strip() for line in text.split("\n")]
        if lines and title and lines[0] == title.strip():
            lines = lines[1:]
        return Document(name, title.strip() or name, "\n".join(lines).strip())
    lines = text.strip().split("\n")
    first = lines[0].strip() if lines else ""
    if first.startswith("#"):
        return Document(name, first.lstrip("# ").strip(), "\n".join(lines[1:]).strip())
    return Document(name, Path(name).stem.replace("-", " ").replace("_", " ").capitalize(),
                    text.strip())


def chunk_text(body: str, limit: int = CHUNK_CHARS) -> list[str]:
    """Paragraphs packed into chunks of at most ``limit`` characters (a longer paragraph is
    cut at sentence ends). Each chunk is one line of text: the prompt quotes it that way."""
    paragraphs = [" ".join(p.split()) for p in _BLANK_LINES.split(body)]
    pieces: list[str] = []
    for paragraph in filter(None, paragraphs):
        if len(paragraph) <= limit:
            pieces.append(paragraph)
            continue
        sentence_run = ""
        for sentence in re.split(r"(?<=[.!?])\s+", paragraph):
            if sentence_run and len(sentence_run) + 1 + len(sentence) > limit:
                pieces.append(sentence_run)
                sentence_run = ""
            sentence_run = f"{sentence_run} {sentence}".strip()[: limit]
        if sentence_run:
            pieces.append(sentence_run)
    chunks: list[str] = []
    for piece in pieces:
        if chunks and len(chunks[-1]) + 1 + len(piece) <= limit:
            chunks[-1] = f"{chunks[-1]} {piece}"
        else:
            chunks.append(piece)
    return chunks


def terms(text: str) -> list[str]:
    """Lower-case words without stop words, a plural ``s`` dropped (``refunds`` → ``refund``)."""
    out = []
    for word in WORD.findall(text.lower()):
        if word in STOP_WORDS:
            continue
        out.append(word[:-1] if len(word) > 3 and word.endswith("s") else word)
    return out


class FolderKnowledge:
    """BM25 over the chunks of a folder's documents, in memory (no database); like the
    database search, it returns at most one passage per document."""

    def __init__(self, documents: Iterable[Document]) -> None:
        self.passages: list[Passage] = []
        self._terms: list[Counter[str]] = []
        for doc in documents:
            for chunk in chunk_text(doc.body):
                self.passages.append(Passage(doc.name, doc.title, chunk))
                self._terms.append(Counter(terms(f"{doc.title} {chunk}")))
        self._df: Counter[str] = Counter()
        for counted in self._terms:
            self._df.update(counted.keys())
        total = sum(sum(c.values()) for c in self._terms)
        self._avg_len = total / len(self._terms) if self._terms else 1.0

    @classmethod
    def from_folder(cls, folder: Path | str | None) -> FolderKnowledge:
        if folder is None:
            return cls(())
        paths = sorted(p for p in Path(folder).iterdir()
                       if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES)
        return cls(read_document(p.name, p.read_text(encoding="utf-8")) for p in paths)

    def search(self, query: str, limit: int = 3) -> list[Passage]:
        wanted = set(terms(query))
        n = len(self.passages)
        scored: list[tuple[float, int]] = []
        for i, counted in enumerate(self._terms):
            length = sum(counted.values()) or 1
            score = 0.0
            for term in wanted & counted.keys():
                idf = math.log(1 + (n - self._df[term] + 0.5) / (self._df[term] + 0.5))
                tf = counted[term]
                score += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / self._avg_len))
            if score > 0:
                scored.append((score, i))
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        best: list[Passage] = []  # one passage per document (its best chunk), as in the DB
        for score, i in scored:
            passage = self.passages[i]
            if all(p.source != passage.source for p in best):
                best.append(Passage(passage.source, passage.title, passage.text,
                                    round(score, 4)))
            if len(best) == limit:
                break
        return best
