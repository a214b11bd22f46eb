"""Policy snapshots move off the run row into rows of their own, each stored once
(``runs.models.snapshots``); existing runs point at the row holding their snapshot."""

import django.db.models.deletion
from django.db import migrations, models


def to_records(apps, schema_editor):
    from runs.models.snapshots import digest_of

    Run = apps.get_model("runs", "Run")
    Record = apps.get_model("runs", "PolicySnapshotRecord")
    ids: dict[str, int] = {}
    runs = Run.objects.only("pk", "policy_snapshot").order_by("pk")
    for run in runs.iterator(chunk_size=2000):
        data = run.policy_snapshot or {}
        digest = digest_of(data)
        if digest not in ids:
            ids[digest] = Record.objects.get_or_create(digest=digest,
                                                       defaults={"data": data})[0].pk
        Run.objects.filter(pk=run.pk).update(snapshot_id=ids[digest])


def to_column(apps, schema_editor):
    Run = apps.get_model("runs", "Run")
    for run in Run.objects.select_related("snapshot").iterator(chunk_size=2000):
        Run.objects.filter(pk=run.pk).update(policy_snapshot=run.snapshot.data)


class Migration(migrations.Migration):
    dependencies = [("runs", "0021_inbox_scale")]

    operations = [
        migrations.CreateModel(
            name="PolicySnapshotRecord",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("digest", models.CharField(max_length=64, unique=True)),
                ("data", models.JSONField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={"verbose_name": "policy snapshot"},
        ),
        migrations.AddField(
            model_name="run", name="snapshot",
            field=models.ForeignKey(null=True, db_index=False, related_name="+",
                                    on_delete=django.db.models.deletion.PROTECT,
                                    to="runs.policysnapshotrecord"),
        ),
        migrations.AlterField(model_name="run", name="policy_snapshot",
                              field=models.JSONField(null=True)),
        migrations.RunPython(to_records, to_column),
        migrations.RemoveField(model_name="run", name="policy_snapshot"),
        migrations.AlterField(
            model_name="run", name="snapshot",
            field=models.ForeignKey(db_index=False, related_name="+",
                                    on_delete=django.db.models.deletion.PROTECT,
                                    to="runs.policysnapshotrecord"),
        ),
    ]
