"""Policy snapshots, each stored once however many runs start with it.

Every run starts with a copy of its policy (``Run.policy``: later admin edits never change
a running run). Nearly all of a team's runs start with the same one, and on the run row it
was 843 of the row's 2 KB: written again into every row version each checkpoint's UPDATE
leaves behind (``make bench``, storage). So the run row points at a snapshot, stored once
by the digest of its JSON; a changed policy (an admin's edit, an operator extending one
run's budget) is a new row. Rows are never changed, so a run's snapshot is what it started
with, and never deleted while a run points at one (``PROTECT``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


def digest_of(data: dict[str, Any]) -> str:
    """The snapshot's identity: SHA-256 of its canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(text.encode()).hexdigest()


class PolicySnapshotRecord(models.Model):
    digest = models.CharField(max_length=64, unique=True)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "policy snapshot"

    def __str__(self) -> str:
        return f"policy snapshot {self.digest[:12]}"

    @classmethod
    def of(cls, data: dict[str, Any]) -> PolicySnapshotRecord:
        """The row holding ``data``: the existing one, or a new one (a concurrent insert of
        the same snapshot is settled by the unique digest)."""
        record, _ = cls.objects.get_or_create(digest=digest_of(data), defaults={"data": data})
        return record
