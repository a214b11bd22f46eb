"""The price table becomes the model catalogue: prices (now optional: an unpriced model
cannot spend), context window, output limit and the endpoint's capabilities."""


import agentdesk.runtime.profiles
import django.core.validators
from decimal import Decimal
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("runs", "0008_rule_answer_placeholders")]

    operations = [
        migrations.RenameModel("ModelPrice", "ModelProfile"),
        migrations.RenameField("ModelProfile", "model", "name"),
        migrations.AlterModelOptions(
            name='modelprofile',
            options={'ordering': ['name'], 'verbose_name': 'model'},
        ),
        migrations.AddField(
            model_name='modelprofile',
            name='context_window',
            field=models.PositiveIntegerField(default=128000, validators=[django.core.validators.MinValueValidator(256)]),
        ),
        migrations.AddField(
            model_name='modelprofile',
            name='logprobs',
            field=models.BooleanField(default=False, help_text='The endpoint returns token log-probabilities.'),
        ),
        migrations.AddField(
            model_name='modelprofile',
            name='max_output_tokens',
            field=models.PositiveIntegerField(default=16384, validators=[django.core.validators.MinValueValidator(16)]),
        ),
        migrations.AddField(
            model_name='modelprofile',
            name='probe_report',
            field=models.JSONField(blank=True, default=dict, editable=False),
        ),
        migrations.AddField(
            model_name='modelprofile',
            name='probed_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name='modelprofile',
            name='reasoning',
            field=models.BooleanField(default=False, help_text='A reasoning model: requests send max_completion_tokens and no temperature.'),
        ),
        migrations.AddField(
            model_name='modelprofile',
            name='reasoning_effort',
            field=models.CharField(blank=True, choices=[('', '—'), ('minimal', 'minimal'), ('low', 'low'), ('medium', 'medium'), ('high', 'high')], default='', max_length=10),
        ),
        migrations.AddField(
            model_name='modelprofile',
            name='structured_output',
            field=models.CharField(choices=[('json_schema', 'json_schema (strict)'), ('json_object', 'json_object, schema in the instructions'), ('prompt', 'prompt only, parsed (one repair)')], default=agentdesk.runtime.profiles.StructuredOutput['JSON_SCHEMA'], max_length=12),
        ),
        migrations.AddField(
            model_name='modelprofile',
            name='tokenizer',
            field=models.CharField(blank=True, default='', help_text='A tiktoken encoding (o200k_base, cl100k_base) to count prompt tokens with. Empty: a conservative estimate.', max_length=40),
        ),
        migrations.AddField(
            model_name='modelprofile',
            name='tool_calling',
            field=models.CharField(choices=[('native', "native (the API's tools parameter)"), ('prompted', 'prompted (tools described in the instructions)')], default=agentdesk.runtime.profiles.ToolCalling['NATIVE'], max_length=10),
        ),
        migrations.AlterField(
            model_name='modelprofile',
            name='cached_input_per_mtok',
            field=models.DecimalField(blank=True, decimal_places=4, help_text='USD per million tokens. Empty: not priced, the model cannot spend. 0 is a price.', max_digits=10, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0'))], verbose_name='cached input price'),
        ),
        migrations.AlterField(
            model_name='modelprofile',
            name='input_per_mtok',
            field=models.DecimalField(blank=True, decimal_places=4, help_text='USD per million tokens. Empty: not priced, the model cannot spend. 0 is a price.', max_digits=10, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0'))], verbose_name='input price'),
        ),
        migrations.AlterField(
            model_name='modelprofile',
            name='name',
            field=models.CharField(help_text='The model name the endpoint expects.', max_length=100, unique=True),
        ),
        migrations.AlterField(
            model_name='modelprofile',
            name='output_per_mtok',
            field=models.DecimalField(blank=True, decimal_places=4, help_text='USD per million tokens. Empty: not priced, the model cannot spend. 0 is a price.', max_digits=10, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0'))], verbose_name='output price'),
        ),
    ]
