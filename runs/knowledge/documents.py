"""Documents in, chunks out: reading and checking a file, indexing it in one transaction,
and keeping an agent's package documents in step with the files its package ships."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction

from agentdesk.agents import get_agent
from agentdesk.runtime.knowledge import DOCUMENT_SUFFIXES, Document, chunk_text, read_document

from ..errors import AppError, DocumentRejected, DocumentTooLarge
from ..models import Agent, KnowledgeChunk, KnowledgeDocument

log = logging.getLogger(__name__)

NAME_CHARS = 255
TITLE_CHARS = 300
# C0 controls other than tab, newline, form feed and carriage return: text has (almost) none
_CONTROL = re.compile(r"[\x01-\x08\x0b\x0e-\x1f\x7f]")
Origin = KnowledgeDocument.Origin


# -- reading a file ----------------------------------------------------------------------

@dataclass(frozen=True)
class Prepared:
    """A file read and checked, ready to store."""

    document: Document
    chunks: list[str]
    size_bytes: int
    checksum: str


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{n} bytes"


def clean_name(name: str) -> str:
    """The file's own name (a browser may send a path), checked for a suffix we read."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base:
        raise DocumentRejected("The file has no name: give it one ending in .md, .txt or "
                               ".html and upload it again.", {"file": ["No file name."]})
    suffix = Path(base).suffix.lower()
    if suffix not in DOCUMENT_SUFFIXES:
        what = f"a {suffix} file" if suffix else "a file without a suffix"
        message = (f"{base} is {what}: only Markdown (.md), plain text (.txt) and HTML "
                   "(.html, .htm) documents can be indexed. Save it in one of those formats "
                   "and upload it again.")
        raise DocumentRejected(message, {"file": [message]})
    if len(base) > NAME_CHARS:
        message = f"The file name is {len(base)} characters long; shorten it to {NAME_CHARS}."
        raise DocumentRejected(message, {"file": [message]})
    return base


def check_size(name: str, size: int) -> None:
    limit = settings.KNOWLEDGE_MAX_BYTES
    if size > limit:
        message = (f"{name} is {_size(size)}; a knowledge document may be at most "
                   f"{_size(limit)}. Split it into smaller documents and upload each "
                   "(the limit is the AGENTDESK_KNOWLEDGE_MAX_BYTES setting).")
        raise DocumentTooLarge(message, {"file": [message]})


def prepare_document(name: str, raw: bytes) -> Prepared:
    """Check and read a file: its type by suffix, its size, that it is UTF-8 text (not a
    binary file renamed), and that it has text to index. Raises ``DocumentRejected`` or
    ``DocumentTooLarge`` with a message that says what to do."""
    name = clean_name(name)
    check_size(name, len(raw))
    binary = (f"{name} looks like a binary file, not text. Upload the document as UTF-8 "
              "Markdown, plain text or HTML (export it from the program that made it).")
    if b"\x00" in raw:
        raise DocumentRejected(binary, {"file": [binary]})
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        message = (f"{name} is not UTF-8 text (byte {exc.start} cannot be read). Save it "
                   "with the UTF-8 encoding and upload it again.")
        raise DocumentRejected(message, {"file": [message]}) from None
    if len(_CONTROL.findall(text)) > max(8, len(text) // 100):
        raise DocumentRejected(binary, {"file": [binary]})
    document = read_document(name, text)
    document = Document(document.name, document.title[:TITLE_CHARS], document.body)
    chunks = chunk_text(document.body)
    if not chunks:
        message = f"{name} has no text to index (it is empty, or only markup or a title)."
        raise DocumentRejected(message, {"file": [message]})
    return Prepared(document, chunks, len(raw), hashlib.sha256(raw).hexdigest())


# -- writing -----------------------------------------------------------------------------

def _lock_agent(agent_id: int) -> None:
    """Indexing for one agent, one writer at a time (Postgres; SQLite has one writer)."""
    list(Agent.objects.select_for_update().filter(pk=agent_id).values_list("pk", flat=True))


def _write_chunks(document: KnowledgeDocument, chunks: list[str]) -> None:
    KnowledgeChunk.objects.filter(document=document).delete()
    KnowledgeChunk.objects.bulk_create(
        KnowledgeChunk(document=document, agent_id=document.agent_id, ordinal=i,
                       title=document.title, text=text)
        for i, text in enumerate(chunks)
    )


def index_document(agent: Agent, name: str, raw: bytes, origin: str = Origin.UPLOAD
                   ) -> KnowledgeDocument:
    """Add or replace the agent's document ``name`` with the file ``raw`` and its chunks,
    in one transaction (a search sees the old version or the new one, never half)."""
    prepared = prepare_document(name, raw)
    with transaction.atomic():
        _lock_agent(agent.pk)
        document, _ = KnowledgeDocument.objects.update_or_create(
            agent_id=agent.pk, name=prepared.document.name,
            defaults={"title": prepared.document.title, "content": prepared.document.body,
                      "size_bytes": prepared.size_bytes, "checksum": prepared.checksum,
                      "origin": origin},
        )
        _write_chunks(document, prepared.chunks)
    return document


def reindex_document(document_id: int) -> int:
    """Cut a stored document into chunks again (after the chunking changed); the number of
    chunks it has now."""
    with transaction.atomic():
        document = KnowledgeDocument.objects.select_for_update().get(pk=document_id)
        chunks = chunk_text(document.content)
        _write_chunks(document, chunks)
    return len(chunks)


# -- package documents -------------------------------------------------------------------

@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept_uploads: list[str] = field(default_factory=list)  # an upload of the same name wins
    skipped: dict[str, str] = field(default_factory=dict)  # file → why it was not indexed

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def package_files(folder: Path | str | None) -> dict[str, Path]:
    """The documents a package ships: files in ``folder`` with a suffix we read."""
    if folder is None or not Path(folder).is_dir():
        return {}
    return {p.name: p for p in sorted(Path(folder).iterdir())
            if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES}


def sync_package_knowledge(agent: Agent) -> SyncReport:
    """Index the documents of the agent's installed package (its spec's ``knowledge_dir``)."""
    spec = get_agent(agent.slug)
    return sync_folder(agent, spec.knowledge_dir if spec is not None else None)


def sync_folder(agent: Agent, folder: Path | str | None) -> SyncReport:
    """Make the agent's package documents match the files in ``folder``: new and changed
    files (by checksum) are indexed, documents whose file is gone are removed, unchanged
    ones are left as they are. Uploaded documents are never touched (an upload named like
    a package file replaces it). A file that cannot be indexed is skipped and logged."""
    report = SyncReport()
    files = package_files(folder)
    with transaction.atomic():
        _lock_agent(agent.pk)
        existing = {d.name: d for d in KnowledgeDocument.objects.filter(agent_id=agent.pk)
                    .only("name", "checksum", "origin")}
        for name, path in files.items():
            doc = existing.get(name)
            if doc is not None and doc.origin == Origin.UPLOAD:
                report.kept_uploads.append(name)
                continue
            try:
                check_size(name, path.stat().st_size)
                raw = path.read_bytes()
                if doc is not None and doc.checksum == hashlib.sha256(raw).hexdigest():
                    report.unchanged.append(name)
                    continue
                index_document(agent, name, raw, Origin.PACKAGE)
            except (AppError, OSError) as exc:
                report.skipped[name] = getattr(exc, "message", str(exc))
                log.warning("knowledge: %s of agent %s not indexed: %s", name, agent.slug,
                            report.skipped[name])
                continue
            (report.updated if doc is not None else report.added).append(name)
        gone = [d for d in existing.values() if d.origin == Origin.PACKAGE and d.name not in files]
        if gone:
            KnowledgeDocument.objects.filter(pk__in=[d.pk for d in gone]).delete()
            report.removed = sorted(d.name for d in gone)
    if report.changed:
        log.info("knowledge: agent %s package documents synced: %d added, %d updated, "
                 "%d removed", agent.slug, len(report.added), len(report.updated),
                 len(report.removed))
    return report


def _needs_sync(agent_id: int, files: dict[str, Path]) -> bool:
    """Whether the database's package documents differ from the files that can be indexed
    (files over the size limit cannot: they are not even read)."""
    stored = dict(KnowledgeDocument.objects.filter(agent_id=agent_id, origin=Origin.PACKAGE)
                  .values_list("name", "checksum"))
    uploads = set(KnowledgeDocument.objects.filter(agent_id=agent_id, origin=Origin.UPLOAD,
                                                   name__in=list(files))
                  .values_list("name", flat=True))
    wanted = {name: hashlib.sha256(path.read_bytes()).hexdigest()
              for name, path in files.items()
              if name not in uploads and path.stat().st_size <= settings.KNOWLEDGE_MAX_BYTES}
    return stored != wanted


_checked: dict[int, tuple[tuple[str, int, int], ...]] = {}
_checked_lock = threading.Lock()


def _stamp(folder: Path | str | None) -> tuple[tuple[str, int, int], ...]:
    """Name, size and time of each file ``package_files`` would list, read with one
    ``scandir`` and a ``stat`` per file: every run's first step asks (``knowledge_for``),
    and through ``pathlib`` it cost a millisecond of CPU a run (two stats and a Path per
    file)."""
    if folder is None:
        return ()
    try:
        with os.scandir(folder) as entries:
            found = [(entry.name, entry.stat()) for entry in entries
                     if os.path.splitext(entry.name)[1].lower() in DOCUMENT_SUFFIXES
                     and entry.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return ()
    return tuple(sorted((name, st.st_size, st.st_mtime_ns) for name, st in found))


def ensure_package_knowledge(agent: Agent, folder: Path | str | None) -> None:
    """Index the package's documents if the database does not have them as they are now:
    checked once per process and agent (again only when a file's size or time changes).
    A failure is logged, never raised: the run goes on with what is indexed."""
    try:
        stamp = _stamp(folder)
        if _checked.get(agent.pk) == stamp:
            return
        with _checked_lock:
            if _checked.get(agent.pk) == stamp:
                return
            if _needs_sync(agent.pk, package_files(folder)):
                sync_folder(agent, folder)
            _checked[agent.pk] = stamp
    except Exception:
        log.exception("knowledge: could not sync the package documents of agent %s",
                      agent.slug)


def forget_checks() -> None:
    """Check every agent's package documents again (tests; a process that swapped data)."""
    with _checked_lock:
        _checked.clear()
