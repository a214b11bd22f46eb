# Issue 15 (roles and tenancy): the viewer role; policies (and through them rules) belong to
# a team, their names unique per team.
#
# Existing policies go to the team of their agents. A policy that agents of several teams
# shared is copied, rules included, once per further team, and those teams' agents use
# their copy: no policy stays shared across teams. A policy no agent uses goes to the first
# team (one named "default" is made when there is none).
import django.db.models.deletion
from django.db import migrations, models


def assign_policies_to_teams(apps, schema_editor) -> None:
    Policy = apps.get_model("runs", "Policy")
    Rule = apps.get_model("runs", "Rule")
    Agent = apps.get_model("runs", "Agent")
    Team = apps.get_model("runs", "Team")
    copied = [f.name for f in Policy._meta.concrete_fields if f.name not in ("id", "team")]
    rule_fields = [f.name for f in Rule._meta.concrete_fields if f.name not in ("id", "policy")]
    for policy in Policy.objects.filter(team__isnull=True).order_by("pk"):
        teams = sorted(set(Agent.objects.filter(policy=policy).values_list("team_id", flat=True)))
        if not teams:
            first = Team.objects.order_by("pk").first() or Team.objects.create(
                slug="default", name="Default team")
            teams = [first.pk]
        policy.team_id = teams[0]
        policy.save(update_fields=["team"])
        for team_id in teams[1:]:
            copy = Policy.objects.create(team_id=team_id,
                                         **{name: getattr(policy, name) for name in copied})
            Rule.objects.bulk_create([
                Rule(policy=copy, **{name: getattr(rule, name) for name in rule_fields})
                for rule in Rule.objects.filter(policy=policy).order_by("pk")])
            Agent.objects.filter(policy=policy, team_id=team_id).update(policy=copy)
    if schema_editor.connection.vendor == "postgresql":
        # check the deferred foreign keys now: Postgres refuses the ALTER TABLE below while
        # trigger events on the table are pending
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        schema_editor.execute("SET CONSTRAINTS ALL DEFERRED")


class Migration(migrations.Migration):
    dependencies = [("runs", "0018_notifications")]
    operations = [
        migrations.AlterField(
            model_name="membership",
            name="role",
            field=models.CharField(choices=[("viewer", "viewer (read-only console)"), ("operator", "operator (claims and decides)"), ("admin", "team admin (administers the team)")], default="operator", max_length=20),
        ),
        migrations.AlterField(
            model_name="policy",
            name="name",
            field=models.CharField(max_length=200),
        ),
        migrations.AddField(
            model_name="policy",
            name="team",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name="policies", to="runs.team"),
        ),
        migrations.RunPython(assign_policies_to_teams, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="policy",
            name="team",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="policies", to="runs.team"),
        ),
        migrations.AddConstraint(
            model_name="policy",
            constraint=models.UniqueConstraint(fields=("team", "name"), name="policy_name_per_team"),
        ),
    ]
