"""Knowledge documents: indexing, and search on the database's own full-text engine.

- ``index_document`` turns a file (an admin upload, a package's file) into a
  ``KnowledgeDocument`` and its chunks in one transaction; the database indexes the chunks
  itself (the triggers of migration ``0014_knowledge``, see ``runs/models/knowledge.py``).
- ``sync_package_knowledge`` makes an Agent row's package documents match the files its
  package ships (``AgentSpec.knowledge_dir``); ``knowledge_for`` does that lazily on a
  worker, once per process and agent, and gives the engine its ``Knowledge``.
- ``search_passages`` is the one selector behind ``DjangoKnowledge``: Postgres (tsvector
  under a GIN index, ``ts_rank`` weighted by idf) or SQLite (FTS5, ``bm25()``), always
  scoped to one agent, the best passage of each document.

A search ORs the words of the question: "how long until my refund arrives?" has to find
"refunds arrive within 5 business days", which never says "how long". (websearch and plain
queries AND their words, and would find nothing.) The ranking puts passages that match
more, and rarer, words first.

``documents`` (files in), ``questions`` (the words a search looks for), ``search`` (the
selector).
"""

from .documents import (
    Prepared,
    SyncReport,
    check_size,
    clean_name,
    ensure_package_knowledge,
    forget_checks,
    index_document,
    package_files,
    prepare_document,
    reindex_document,
    sync_folder,
    sync_package_knowledge,
)
from .questions import NOISE_WORDS, THESAURUS, query_words
from .search import CANDIDATES, FTS_TABLE, DjangoKnowledge, knowledge_for, search_passages

__all__ = [
    "CANDIDATES",
    "FTS_TABLE",
    "NOISE_WORDS",
    "THESAURUS",
    "DjangoKnowledge",
    "Prepared",
    "SyncReport",
    "check_size",
    "clean_name",
    "ensure_package_knowledge",
    "forget_checks",
    "index_document",
    "knowledge_for",
    "package_files",
    "prepare_document",
    "query_words",
    "reindex_document",
    "search_passages",
    "sync_folder",
    "sync_package_knowledge",
]
