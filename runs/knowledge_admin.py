"""Admin for knowledge documents: upload (.md, .txt, .html), list, search, re-index; and
``KnowledgeDocumentInline``, an agent's documents read-only on its admin page.

An upload is checked and indexed by ``runs.knowledge`` (one transaction); whatever it
refuses — another type, too large, binary, no text — is a form error next to the file
field, never a server error. Uploading a file named like one of the agent's documents
replaces it (a package document too: the upload then wins over the package's file).
Every upload, replacement and delete is audited for the agent's team, with the document's
name, title, size and checksum (not its text).
"""

from __future__ import annotations

from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count
from django.utils.html import format_html

from . import audit, knowledge
from .admin_base import TeamScopedAdmin
from .errors import AppError
from .models import Agent, KnowledgeDocument

PREVIEW_CHARS = 4000


def _limit() -> str:
    return f"{settings.KNOWLEDGE_MAX_BYTES / (1024 * 1024):g} MiB"


class _FileChecks:
    """The uploaded file, read and checked by ``runs.knowledge`` in the form's clean."""

    raw: bytes | None = None
    filename: str = ""

    def _check(self, upload, name: str | None = None) -> None:
        try:
            name = name or knowledge.clean_name(upload.name)
            knowledge.check_size(name, upload.size)  # before reading it into memory
            raw = upload.read()
            knowledge.prepare_document(name, raw)
        except AppError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None
        self.raw, self.filename = raw, name


class UploadForm(_FileChecks, forms.ModelForm):
    file = forms.FileField(
        help_text="A Markdown (.md), plain text (.txt) or HTML (.html) file, UTF-8, at most "
                  "the size limit. A file named like one of the agent's documents replaces it.")

    class Meta:
        model = KnowledgeDocument
        fields = ["agent"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text += f" Size limit: {_limit()}."
        # the admin already narrowed the choices to the user's teams (TeamScopedAdmin)
        self.fields["agent"].queryset = self.fields["agent"].queryset.select_related(
            "team").order_by("team__slug", "slug")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        self._check(upload)
        return upload


class ReplaceForm(_FileChecks, forms.ModelForm):
    file = forms.FileField(required=False, label="Replace with a new version",
                           help_text="Optional: a file of the same type; the document keeps "
                                     "its name.")

    class Meta:
        model = KnowledgeDocument
        fields: list[str] = []

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if upload:
            ours = Path(self.instance.name).suffix.lower()
            theirs = Path(upload.name).suffix.lower()
            if theirs != ours:
                raise forms.ValidationError(
                    f"{self.instance.name} is a {ours} document: upload a {ours} file to "
                    f"replace it, or add the {theirs or 'new'} file as a new document.")
            self._check(upload, self.instance.name)
        return upload


def _size(doc: KnowledgeDocument) -> str:
    n = doc.size_bytes
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} bytes"


def _chunks(doc: KnowledgeDocument) -> int:
    total = getattr(doc, "chunk_total", None)  # annotated on the list
    return total if total is not None else doc.chunks.count()


def _summary(doc: KnowledgeDocument | None) -> dict[str, object]:
    """What the audit log shows of a document (its text would not fit there)."""
    if doc is None:
        return {}
    return {"agent": str(doc.agent), "name": doc.name, "title": doc.title,
            "origin": doc.origin, "size_bytes": doc.size_bytes, "checksum": doc.checksum}


def _audit(request, doc: KnowledgeDocument, verb: str, before, after, team_id: int,
           target_id=None) -> None:
    audit.record_change(obj=doc, verb=verb, actor=request.user, before=before, after=after,
                        target_id=target_id, team_ids={team_id})


@admin.register(KnowledgeDocument)
class KnowledgeDocumentAdmin(TeamScopedAdmin):
    list_display = ("name", "agent", "title", "size", "chunk_count", "origin", "updated_at")
    list_filter = ("origin", "agent__team", "agent")
    list_select_related = ("agent", "agent__team")
    search_fields = ("name", "title", "agent__slug", "agent__name")
    ordering = ("agent__team__slug", "agent__slug", "name")
    actions = ["reindex", "sync_packages"]
    DETAILS = ("agent", "name", "title", "origin", "size", "chunk_count", "checksum",
               "created_at", "updated_at")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(chunk_total=Count("chunks"))

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = ReplaceForm if obj is not None else UploadForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("agent", "file")
        return (*self.DETAILS, "file", "preview")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else (*self.DETAILS, "preview")

    @admin.display(description="size", ordering="size_bytes")
    def size(self, obj: KnowledgeDocument) -> str:
        return _size(obj)

    @admin.display(description="chunks", ordering="chunk_total")
    def chunk_count(self, obj: KnowledgeDocument) -> int:
        return _chunks(obj)

    @admin.display(description="text (as indexed)")
    def preview(self, obj: KnowledgeDocument) -> str:
        text = obj.content
        more = len(text) > PREVIEW_CHARS
        return format_html('<pre style="white-space: pre-wrap; max-height: 30em; overflow: auto; '
                           'margin: 0">{}{}</pre>', text[:PREVIEW_CHARS], " …" if more else "")

    def save_model(self, request, obj, form, change) -> None:
        if form.raw is None:  # a change without a new file: nothing to write
            return
        agent = obj.agent
        old = KnowledgeDocument.objects.filter(agent=agent, name=form.filename).first()
        with transaction.atomic():
            doc = knowledge.index_document(agent, form.filename, form.raw,
                                           KnowledgeDocument.Origin.UPLOAD)
            _audit(request, doc, "changed" if old else "created", _summary(old), _summary(doc),
                   agent.team_id)
        obj.pk = doc.pk
        obj.refresh_from_db()
        if old is not None and not change:
            messages.info(request, f"{doc.name} replaced the agent's earlier document of that "
                                   "name.")

    def delete_model(self, request, obj) -> None:
        pk, before, team_id = obj.pk, _summary(obj), obj.agent.team_id
        with transaction.atomic():
            super().delete_model(request, obj)
            _audit(request, obj, "deleted", before, {}, team_id, target_id=pk)

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            doomed = [(obj, obj.pk, _summary(obj), obj.agent.team_id)
                      for obj in queryset.select_related("agent")]
            super().delete_queryset(request, queryset)
            for obj, pk, before, team_id in doomed:
                _audit(request, obj, "deleted", before, {}, team_id, target_id=pk)

    @admin.action(description="Re-index selected documents", permissions=["change"])
    def reindex(self, request, queryset) -> None:
        """Cut the stored text into chunks again (after the chunking changed)."""
        ids = list(queryset.values_list("pk", flat=True))
        chunks = sum(knowledge.reindex_document(pk) for pk in ids)
        messages.success(request, f"Re-indexed {len(ids)} document(s): {chunks} chunks.")

    @admin.action(description="Sync package documents of the selected documents' agents",
                  permissions=["change"])
    def sync_packages(self, request, queryset) -> None:
        """Read each agent's package folder again: new and changed files are indexed,
        removed ones deleted; uploads are left alone."""
        agents = Agent.objects.filter(pk__in=queryset.values("agent_id")).select_related("team")
        for agent in agents:
            report = knowledge.sync_package_knowledge(agent)
            text = (f"{agent}: {len(report.added)} added, {len(report.updated)} updated, "
                    f"{len(report.removed)} removed, {len(report.unchanged)} unchanged")
            if report.skipped:
                text += "; not indexed: " + "; ".join(report.skipped.values())
            messages.add_message(request, messages.WARNING if report.skipped else
                                 messages.SUCCESS, text)


class KnowledgeDocumentInline(admin.TabularInline):
    """The agent's documents, read-only: they are uploaded and replaced on their own page."""

    model = KnowledgeDocument
    fields = ("name", "title", "origin", "size", "chunk_count", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "knowledge documents (add and replace them under Knowledge documents)"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(chunk_total=Count("chunks"))

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="size")
    def size(self, obj: KnowledgeDocument) -> str:
        return _size(obj)

    @admin.display(description="chunks")
    def chunk_count(self, obj: KnowledgeDocument) -> int:
        return _chunks(obj)
