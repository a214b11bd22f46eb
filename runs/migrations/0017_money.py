# Issue 15 (money: reservations and team budget extensions): filled in by its work.
# A run holds its team-budget reservation (released by the reaper when its worker died);
# a team admin's extension of the day's budget is kept on that day's TeamDailySpend row.
from decimal import Decimal

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("runs", "0016_security")]
    operations: list = [
        migrations.AddField(
            model_name="run",
            name="reserved_usd",
            field=models.DecimalField(decimal_places=8, default=Decimal("0"), max_digits=14),
        ),
        migrations.AddField(
            model_name="run",
            name="reserved_on",
            field=models.DateField(blank=True, help_text="The day (TeamDailySpend row) it is held on.", null=True),
        ),
        migrations.AddField(
            model_name="teamdailyspend",
            name="extra_usd",
            field=models.DecimalField(decimal_places=8, default=Decimal("0"), help_text="Added to the team's daily budget for this day only, by team admins extending it after a team_budget escalation (audited).", max_digits=14),
        ),
    ]
