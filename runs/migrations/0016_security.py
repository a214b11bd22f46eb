# Issue 15 (security): webhooks are always signed — every team has a secret, rotatable.
from django.db import migrations, models

import runs.models.teams


def give_every_team_a_secret(apps, schema_editor):
    """Teams made before this had an empty secret, and their webhooks went out unsigned."""
    Team = apps.get_model("runs", "Team")
    for team in Team.objects.filter(webhook_secret=""):
        team.webhook_secret = runs.models.teams.new_webhook_secret()
        team.save(update_fields=["webhook_secret"])


class Migration(migrations.Migration):
    dependencies = [("runs", "0015_agent_definitions")]
    operations = [
        migrations.AddField(
            model_name="team",
            name="webhook_secret_previous",
            field=models.CharField(blank=True, default="", editable=False, help_text="The secret before the last rotation: it still signs during the grace period.", max_length=100),
        ),
        migrations.AddField(
            model_name="team",
            name="webhook_secret_rotated_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AlterField(
            model_name="team",
            name="webhook_secret",
            field=models.CharField(default=runs.models.teams.new_webhook_secret, editable=False, help_text="HMAC-SHA256 key that signs webhook bodies (shown in full only once).", max_length=100),
        ),
        migrations.RunPython(give_every_team_a_secret, migrations.RunPython.noop),
    ]
