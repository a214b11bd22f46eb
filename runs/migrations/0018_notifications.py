# Issue 17 (notifications and assignment).
# Escalations get an assignee (runs.assignment) and the SLA warnings already sent; teams can
# assign new escalations round-robin among members active lately (Membership.last_active_at);
# teams' notification targets and the outbox of notifications owed to them (runs.notifier).
import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import runs.models.notifications


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0017_money"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]
    operations = [
        migrations.AddField(
            model_name='escalation',
            name='assigned_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='escalation',
            name='assigned_to',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='escalation',
            name='sla_notified',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='membership',
            name='last_active_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name='team',
            name='auto_assign',
            field=models.BooleanField(default=False, help_text="Round-robin among the team's members active in the console lately.", verbose_name='assign new escalations automatically'),
        ),
        migrations.AddField(
            model_name='team',
            name='auto_assign_active_minutes',
            field=models.PositiveIntegerField(default=15, help_text='Only members who used the console this recently get new escalations.', validators=[django.core.validators.MinValueValidator(1)], verbose_name='active within (minutes)'),
        ),
        migrations.AddField(
            model_name='team',
            name='auto_assign_last',
            field=models.ForeignKey(blank=True, editable=False, help_text='The member who got the last automatic assignment (the round-robin turn).', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.CreateModel(
            name='NotificationTarget',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(help_text='e.g. “#support-oncall on Slack”.', max_length=100)),
                ('destination', models.TextField(help_text="An apprise URL (slack://…, msteams://…, discord://…, mailto://…, json://host/path, form://…) or email:ops@example.com,lead@example.com to send through this server's own mail settings. A secret: shown masked once saved.", verbose_name='URL')),
                ('events', models.JSONField(blank=True, default=runs.models.notifications.all_events, help_text='The events this target is told about.')),
                ('min_priority', models.PositiveSmallIntegerField(choices=[(10, 'urgent only (approvals, unknown or failed tool outcomes)'), (20, 'urgent and bounds hit (steps, time, tokens, cost, budget, loops)'), (30, 'also low confidence'), (50, 'every escalation')], default=50, help_text='Which new escalations are sent (priority 10 is the most urgent).', verbose_name='new escalations at or above')),
                ('enabled', models.BooleanField(default=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('sending_until', models.DateTimeField(blank=True, editable=False, null=True)),
                ('window_started_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('window_count', models.PositiveIntegerField(default=0, editable=False)),
                ('team', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notification_targets', to='runs.team')),
            ],
        ),
        migrations.CreateModel(
            name='NotificationDelivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('event', models.CharField(choices=[('escalation.opened', 'new escalation (at or above the priority)'), ('escalation.sla_50', '50% of the time to decide gone, no decision'), ('escalation.sla_90', '90% of the time to decide gone, no decision'), ('run.failed', 'run failed'), ('budget.80', 'team budget 80% used'), ('budget.100', 'team budget used up')], max_length=40)),
                ('key', models.CharField(max_length=120)),
                ('title', models.CharField(max_length=300)),
                ('body', models.TextField()),
                ('link', models.URLField(blank=True, default='', max_length=500)),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('delivered', 'Delivered'), ('failed', 'Failed')], default='pending', max_length=20)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('last_error', models.TextField(blank=True, default='')),
                ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                ('delivered_at', models.DateTimeField(blank=True, null=True)),
                ('message_id', models.CharField(blank=True, default='', max_length=32)),
                ('in_digest', models.BooleanField(default=False)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('escalation', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='runs.escalation')),
                ('run', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='runs.run')),
                ('team', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='runs.team')),
                ('target', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='runs.notificationtarget')),
            ],
            options={
                'verbose_name_plural': 'notification deliveries',
                'indexes': [models.Index(fields=['target', 'status', 'next_attempt_at'], name='notification_due')],
                'constraints': [models.UniqueConstraint(fields=('target', 'key'), name='one_notification_per_event')],
            },
        ),
    ]
