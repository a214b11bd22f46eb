"""The one selector of knowledge: an agent's best passages for a question, on the
database's own full-text engine (Postgres tsvector and GIN, or SQLite FTS5)."""

from __future__ import annotations

import math
from pathlib import Path

from django.db import connection

from agentdesk.runtime.knowledge import Passage

from ..models import Agent, KnowledgeChunk, KnowledgeDocument, KnowledgeTerm
from .documents import ensure_package_knowledge
from .questions import query_words

FTS_TABLE = "runs_knowledgechunk_fts"


def search_passages(agent_id: int, query: str, limit: int = 3) -> list[Passage]:
    """The agent's ``limit`` best passages for ``query``, best first: the one selector of
    knowledge, on the database's full-text engine. Only this agent's chunks are searched.

    One passage per document, its best chunk: a run gets a few passages, and three sources
    answer more questions than two slices of one (a question about returning a laptop needs
    the returns policy more than the laptop manual's second page)."""
    words = query_words(query)
    if not words or limit <= 0:
        return []
    if connection.vendor == "postgresql":
        rows = _search_postgres(agent_id, words, limit)
    elif connection.vendor == "sqlite":
        rows = _search_sqlite(agent_id, words, limit)
    else:
        raise NotImplementedError(f"no full-text search for the {connection.vendor} database")
    return [Passage(source=name, title=title, text=text, score=round(float(score), 4))
            for name, title, text, score in rows]


# Postgres ranks as FTS5's bm25() does: each word of the question by its BM25 idf among
# this agent's chunks (``KnowledgeTerm``, counted by triggers) times ``ts_rank`` of the chunk
# for that word (its frequency there, a title match weighing more). ts_rank alone has no
# idf: "order", in most passages, would count as much as "cancel", which tells them apart.
#
# Only candidate chunks are ranked: those that have one of the question's rarest words, as
# long as those words are in at most CANDIDATES chunks together (for an agent of a few
# hundred chunks, every word is). A chunk with none of them, only words that are everywhere,
# is not a good answer anyway; ranking it would cost a read of most of the agent's chunks.
# When even the rarest word is in more than CANDIDATES chunks, the first CANDIDATES found
# are ranked: among thousands of chunks that share one common word, any is as good a guess.
CANDIDATES = 1000
_TABLES = {"chunk": KnowledgeChunk._meta.db_table, "document": KnowledgeDocument._meta.db_table,
           "term": KnowledgeTerm._meta.db_table}
_POSTGRES_COUNTS = """
SELECT w.word, max(t.chunks)
FROM unnest(%(words)s::text[]) AS w(word)
CROSS JOIN LATERAL unnest(tsvector_to_array(to_tsvector('english', w.word))) AS l(lexeme)
JOIN {term} t ON t.agent_id = %(agent)s AND t.lexeme = l.lexeme
GROUP BY w.word
UNION ALL
SELECT NULL, t.chunks FROM {term} t WHERE t.agent_id = %(agent)s AND t.lexeme = ''
""".format(**_TABLES)  # nosec B608  # only our table names go in; values are parameters
_POSTGRES_SEARCH = """
WITH words AS MATERIALIZED (
    SELECT to_tsquery('english', w.word) AS q, w.idf
    FROM unnest(%(words)s::text[], %(idf)s::float8[]) AS w(word, idf)
), hits AS MATERIALIZED (
    SELECT c.id, c.document_id, c.search FROM {chunk} c
    WHERE c.agent_id = %(agent)s AND c.search @@ to_tsquery('english', %(candidates)s)
    LIMIT %(budget)s
), scored AS (
    SELECT DISTINCT ON (h.document_id) h.id,
           (SELECT sum(w.idf * ts_rank(h.search, w.q)) FROM words w) AS score
    FROM hits h ORDER BY h.document_id, score DESC, h.id
), best AS (
    SELECT id, score FROM scored ORDER BY score DESC, id LIMIT %(limit)s
)
SELECT d.name, c.title, c.text, best.score
FROM best JOIN {chunk} c ON c.id = best.id JOIN {document} d ON d.id = c.document_id
ORDER BY best.score DESC, best.id
""".format(**_TABLES)  # nosec B608  # only our table names go in; values are parameters


def _search_postgres(agent_id: int, words: list[str], limit: int) -> list[tuple]:
    # the words are letters and digits only: safe as tsquery operands
    with connection.cursor() as cursor:
        cursor.execute(_POSTGRES_COUNTS, {"words": words, "agent": agent_id})
        counts = dict(cursor.fetchall())
        total = counts.pop(None, 0)
        found = sorted((n, words.index(w), w) for w, n in counts.items() if n)
        if not found:
            return []
        candidates, budget = [], 0
        for n, _, word in found:
            if candidates and budget + n > CANDIDATES:
                break
            candidates.append(word)
            budget += n
        cursor.execute(_POSTGRES_SEARCH, {
            "words": [w for _, _, w in found],
            "idf": [math.log(1 + (total - n + 0.5) / (n + 0.5)) for n, _, _ in found],
            "agent": agent_id, "candidates": " | ".join(candidates), "limit": limit,
            "budget": CANDIDATES,
        })
        return cursor.fetchall()


_SQLITE_SEARCH = """
SELECT c.document_id, d.name, c.title, c.text, -bm25({fts}, 2.0, 1.0) AS score
FROM {fts} JOIN {chunk} c ON c.id = {fts}.rowid JOIN {document} d ON d.id = c.document_id
WHERE {fts} MATCH %s AND c.agent_id = %s
ORDER BY score DESC, c.id LIMIT %s
""".format(fts=FTS_TABLE, **_TABLES)  # nosec B608  # only our table names go in


def _search_sqlite(agent_id: int, words: list[str], limit: int) -> list[tuple]:
    match = " OR ".join(f'"{word}"' for word in words)  # quoted: never FTS5 syntax
    found: dict[int, tuple] = {}  # document → its best chunk, in rank order
    with connection.cursor() as cursor:
        # the best few chunks hold the best chunks of the best documents, almost always;
        # only when they do not (one document's chunks fill them) is every match read
        for fetch in (limit * 8, -1):
            cursor.execute(_SQLITE_SEARCH, [match, agent_id, fetch])
            rows = cursor.fetchall()
            for document_id, *passage in rows:
                found.setdefault(document_id, tuple(passage))
            if len(found) >= limit or len(rows) < fetch or fetch < 0:
                break
    return list(found.values())[:limit]


class DjangoKnowledge:
    """The runtime's ``Knowledge`` for one agent: its documents in the database."""

    def __init__(self, agent_id: int) -> None:
        self.agent_id = agent_id

    def search(self, query: str, limit: int = 3) -> list[Passage]:
        return search_passages(self.agent_id, query, limit)

    def __repr__(self) -> str:
        return f"DjangoKnowledge(agent_id={self.agent_id})"


def knowledge_for(agent: Agent, package_dir: Path | str | None) -> DjangoKnowledge:
    """A run's knowledge: its agent's documents, the package's files indexed first if the
    database does not have them as they are (``ensure_package_knowledge``)."""
    ensure_package_knowledge(agent, package_dir)
    return DjangoKnowledge(agent.pk)
