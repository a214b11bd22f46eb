"""What an agent knows: its documents, cut into chunks the database's full-text engine indexes.

A document is uploaded in admin or shipped in the agent's package (``AgentSpec.knowledge_dir``)
and stored as plain text; its chunks are what a search returns (``runs.knowledge``).

The index is the database's own, kept in sync by the database (migration ``0014_knowledge``):

- Postgres: ``KnowledgeChunk.search``, a ``tsvector`` (config ``english``; the title weighted
  A, the text B) that a trigger computes on every INSERT and on every UPDATE of ``title`` or
  ``text``, under a GIN index; and ``KnowledgeTerm``, how many of an agent's chunks contain
  each word (the idf of the ranking), kept by statement triggers on the chunks.
- SQLite: an FTS5 table, ``runs_knowledgechunk_fts``, with the chunks table as its external
  content (porter stemming, ``bm25()`` ranking), kept in sync by three triggers; ``search``
  stays NULL there.

A later migration that makes SQLite rebuild the chunks table (``AlterField`` on it) drops
those triggers with the old table: such a migration must create them again
(``0014_knowledge.SQLITE_TRIGGERS``).
"""

from __future__ import annotations

from django.contrib.postgres.search import SearchVectorField
from django.db import models

from .runs import Agent


class KnowledgeDocument(models.Model):
    class Origin(models.TextChoices):
        UPLOAD = "upload", "uploaded in admin"
        PACKAGE = "package", "shipped with the agent's package"

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE,
                              related_name="knowledge_documents")
    name = models.CharField(max_length=255, help_text="The file's name, e.g. refund-policy.md.")
    title = models.CharField(max_length=300)
    content = models.TextField(help_text="The document as plain text (markup removed).")
    size_bytes = models.PositiveIntegerField(help_text="Size of the file as uploaded.")
    checksum = models.CharField(max_length=64, help_text="SHA-256 of the file as uploaded.")
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.UPLOAD)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["agent_id", "name"]
        constraints = [models.UniqueConstraint(fields=["agent", "name"],
                                               name="knowledge_document_per_agent")]

    def __str__(self) -> str:
        return self.name


class KnowledgeChunk(models.Model):
    """One passage of a document: what a search finds and a run quotes. ``agent`` and
    ``title`` repeat the document's, so the index and its filter need no join."""

    document = models.ForeignKey(KnowledgeDocument, on_delete=models.CASCADE,
                                 related_name="chunks")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="+")
    ordinal = models.PositiveIntegerField()
    title = models.CharField(max_length=300)
    text = models.TextField()
    # Postgres only (written by a trigger; NULL on SQLite, whose index is FTS5).
    search = SearchVectorField(null=True, editable=False)

    class Meta:
        ordering = ["document_id", "ordinal"]
        constraints = [models.UniqueConstraint(fields=["document", "ordinal"],
                                               name="knowledge_chunk_order")]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.ordinal}"


class KnowledgeTerm(models.Model):
    """How many of an agent's chunks contain a word (a lexeme of the ``english`` config;
    the empty lexeme counts all the agent's chunks): what a search weighs its words by.
    Postgres only: written by triggers on the chunks (FTS5 keeps its own counts on SQLite,
    where this table stays empty)."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="+")
    lexeme = models.TextField()
    chunks = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agent", "lexeme"],
                                               name="knowledge_term_per_agent")]

    def __str__(self) -> str:
        return f"{self.lexeme} ({self.chunks})"
