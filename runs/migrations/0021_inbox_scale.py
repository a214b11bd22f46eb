"""Inbox at scale (issue 16): the triage index ends with the id (the inbox's full order, so
a page is read off it with no sort), and the per-reason counts get an index of their own."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("runs", "0020_transcript")]
    operations: list = [
        migrations.RemoveIndex(model_name="escalation", name="esc_triage"),
        migrations.AddIndex(
            model_name="escalation",
            index=models.Index(fields=["team", "status", "priority", "deadline_at", "id"],
                               name="esc_queue"),
        ),
        migrations.AddIndex(
            model_name="escalation",
            index=models.Index(fields=["team", "status", "reason"], name="esc_reason"),
        ),
    ]
