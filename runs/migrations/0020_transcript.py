"""The transcript moves from the run row to the steps (``runs.checkpoints``), and the run
table leaves room on each page for a row's next version (Postgres): a checkpoint that
changes no indexed column is then a HOT update, its old version pruned on the page."""

from django.db import migrations, models


def leave_room(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE runs_run SET (fillfactor = 70)")


def fill_up(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE runs_run RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("runs", "0019_tenancy")]

    operations = [
        migrations.AddField(
            model_name="step",
            name="transcript",
            field=models.JSONField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(leave_room, fill_up),
    ]
