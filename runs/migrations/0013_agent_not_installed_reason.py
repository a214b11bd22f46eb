"""A new ending reason: agent_not_installed (a queued run whose agent's code went away)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0012_confidence_labels'),
    ]

    operations = [
        migrations.AlterField(
            model_name='escalation',
            name='reason',
            field=models.CharField(choices=[('', '—'), ('step_limit', 'step limit'), ('time_limit', 'time limit'), ('token_limit', 'token limit'), ('cost_limit', 'cost limit'), ('team_budget', 'team budget'), ('loop_detected', 'loop detected'), ('tool_failed', 'tool failed'), ('tool_outcome_unknown', 'tool outcome unknown'), ('model_failed', 'model failed'), ('invalid_output', 'invalid output'), ('human_timeout', 'human timeout'), ('aborted_by_operator', 'aborted by operator'), ('low_confidence', 'low confidence'), ('approval_required', 'approval required'), ('rejected', 'rejected'), ('rule_matched', 'rule matched'), ('internal_error', 'internal error'), ('invalid_arguments', 'invalid arguments'), ('model_unpriced', 'model unpriced'), ('agent_not_installed', 'agent not installed')], max_length=40),
        ),
        migrations.AlterField(
            model_name='run',
            name='reason',
            field=models.CharField(blank=True, choices=[('', '—'), ('step_limit', 'step limit'), ('time_limit', 'time limit'), ('token_limit', 'token limit'), ('cost_limit', 'cost limit'), ('team_budget', 'team budget'), ('loop_detected', 'loop detected'), ('tool_failed', 'tool failed'), ('tool_outcome_unknown', 'tool outcome unknown'), ('model_failed', 'model failed'), ('invalid_output', 'invalid output'), ('human_timeout', 'human timeout'), ('aborted_by_operator', 'aborted by operator'), ('low_confidence', 'low confidence'), ('approval_required', 'approval required'), ('rejected', 'rejected'), ('rule_matched', 'rule matched'), ('internal_error', 'internal error'), ('invalid_arguments', 'invalid arguments'), ('model_unpriced', 'model unpriced'), ('agent_not_installed', 'agent not installed')], default='', max_length=40),
        ),
    ]
