"""The model catalogue (admin → Models): what each model costs, how big it is and what its
endpoint accepts. Policies pick their small and large model from it; a run copies the rows
it uses into its policy snapshot (``ModelProfile`` in ``agentdesk.runtime.profiles``)."""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models

from agentdesk.runtime import profiles

from .common import ZERO


def _choices(enum: type, labels: dict) -> list[tuple[str, str]]:
    return [(member.value, labels.get(member, member.value)) for member in enum]


PRICE_HELP = "USD per million tokens. Empty: not priced, the model cannot spend. 0 is a price."


class ModelProfile(models.Model):
    name = models.CharField(max_length=100, unique=True,
                            help_text="The model name the endpoint expects.")
    input_per_mtok = models.DecimalField(max_digits=10, decimal_places=4, null=True,
                                         blank=True, validators=[MinValueValidator(ZERO)],
                                         verbose_name="input price", help_text=PRICE_HELP)
    cached_input_per_mtok = models.DecimalField(
        max_digits=10, decimal_places=4, null=True, blank=True,
        validators=[MinValueValidator(ZERO)], verbose_name="cached input price",
        help_text=PRICE_HELP)
    output_per_mtok = models.DecimalField(max_digits=10, decimal_places=4, null=True,
                                          blank=True, validators=[MinValueValidator(ZERO)],
                                          verbose_name="output price", help_text=PRICE_HELP)
    context_window = models.PositiveIntegerField(default=128_000,
                                                 validators=[MinValueValidator(256)])
    max_output_tokens = models.PositiveIntegerField(default=16_384,
                                                    validators=[MinValueValidator(16)])
    tool_calling = models.CharField(
        max_length=10, default=profiles.ToolCalling.NATIVE,
        choices=_choices(profiles.ToolCalling, {
            profiles.ToolCalling.NATIVE: "native (the API's tools parameter)",
            profiles.ToolCalling.PROMPTED: "prompted (tools described in the instructions)"}))
    structured_output = models.CharField(
        max_length=12, default=profiles.StructuredOutput.JSON_SCHEMA,
        choices=_choices(profiles.StructuredOutput, {
            profiles.StructuredOutput.JSON_SCHEMA: "json_schema (strict)",
            profiles.StructuredOutput.JSON_OBJECT: "json_object, schema in the instructions",
            profiles.StructuredOutput.PROMPT: "prompt only, parsed (one repair)"}))
    reasoning = models.BooleanField(
        default=False, help_text="A reasoning model: requests send max_completion_tokens and "
                                 "no temperature.")
    reasoning_effort = models.CharField(
        max_length=10, blank=True, default="",
        choices=_choices(profiles.ReasoningEffort, {profiles.ReasoningEffort.NONE: "—"}))
    logprobs = models.BooleanField(default=False,
                                   help_text="The endpoint returns token log-probabilities.")
    tokenizer = models.CharField(
        max_length=40, blank=True, default="",
        help_text="A tiktoken encoding (o200k_base, cl100k_base) to count prompt tokens "
                  "with. Empty: a conservative estimate.")
    probed_at = models.DateTimeField(null=True, blank=True, editable=False)
    probe_report = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        verbose_name = "model"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def priced(self) -> bool:
        return self.profile().priced

    def profile(self) -> profiles.ModelProfile:
        """This row as the runtime reads it (fields by name, like ``Policy.snapshot``)."""
        return profiles.ModelProfile.model_validate(
            {name: getattr(self, name) for name in profiles.ModelProfile.model_fields})
