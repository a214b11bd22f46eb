"""Tools an admin adds without code: MCP servers and HTTP endpoints, owned by a team.

Secrets never sit in these rows: a header (or a stdio server's environment variable) names
the environment variable that holds the value, read by the worker when it calls the tool.
An MCP server's tool list is kept (``listing``) from the last time it answered, so a run
started while the server is down still knows the tools it was built for; calling one then
fails as an ordinary tool failure (retried, counted by the breaker, escalated).
"""

from __future__ import annotations

import shlex

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from .teams import Team

TOOL_NAME_HELP = "Letters, digits, '_' and '-' (the name the model calls)."


def env_map_help(what: str) -> str:
    return (f'JSON object {{"{what}": "ENV_VAR_NAME"}}: the value is read from the worker\'s '
            "environment when the tool is called, never stored here.")


class McpServer(models.Model):
    class Transport(models.TextChoices):
        HTTP = "http", "Streamable HTTP"
        STDIO = "stdio", "stdio (a command the worker starts)"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="mcp_servers")
    name = models.SlugField(max_length=60)
    transport = models.CharField(max_length=10, choices=Transport.choices,
                                 default=Transport.HTTP)
    url = models.URLField(blank=True, default="", help_text="Streamable HTTP endpoint, e.g. "
                          "https://mcp.example.com/mcp")
    command = models.CharField(max_length=500, blank=True, default="",
                               help_text="stdio: the program and its arguments. The program "
                                         "must be listed in the MCP_STDIO_COMMANDS setting.")
    header_env = models.JSONField(default=dict, blank=True, verbose_name="headers",
                                  help_text=env_map_help("Authorization"))
    env = models.JSONField(default=dict, blank=True, verbose_name="environment (stdio)",
                           help_text=env_map_help("API_TOKEN"))
    timeout_s = models.FloatField(default=10.0, verbose_name="timeout (s)",
                                  validators=[MinValueValidator(0.1), MaxValueValidator(300)])
    enabled = models.BooleanField(default=True)
    listing = models.JSONField(default=list, blank=True, editable=False,
                               help_text="The tools the server listed the last time it answered.")
    listed_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "MCP server"
        constraints = [models.UniqueConstraint(fields=["team", "name"],
                                               name="mcp_server_per_team")]

    def __str__(self) -> str:
        return f"{self.name} ({self.team.slug})"

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.command) if self.command else []


class HttpTool(models.Model):
    class Method(models.TextChoices):
        GET = "GET"
        POST = "POST"
        PUT = "PUT"
        PATCH = "PATCH"
        DELETE = "DELETE"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="http_tools")
    name = models.CharField(max_length=64, help_text=TOOL_NAME_HELP)
    description = models.TextField(help_text="What the tool does, for the model.")
    method = models.CharField(max_length=6, choices=Method.choices, default=Method.GET)
    url_template = models.CharField(
        max_length=1000, help_text="e.g. https://api.example.com/orders/{order_id} — "
                                   "placeholders are argument names, never in the host.")
    args_schema = models.JSONField(
        default=dict, verbose_name="argument schema",
        help_text='JSON schema of the arguments, e.g. {"type": "object", "properties": '
                  '{"order_id": {"type": "string"}}, "required": ["order_id"]}')
    header_env = models.JSONField(default=dict, blank=True, verbose_name="headers",
                                  help_text=env_map_help("Authorization"))
    read_only = models.BooleanField(
        default=False, help_text="Reads only: no approval needed. Leave off for anything "
                                 "that changes data (it then follows the approval policy).")
    timeout_s = models.FloatField(default=10.0, verbose_name="timeout (s)",
                                  validators=[MinValueValidator(0.1), MaxValueValidator(300)])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "HTTP tool"
        constraints = [models.UniqueConstraint(fields=["team", "name"],
                                               name="http_tool_per_team")]

    def __str__(self) -> str:
        return f"{self.name} ({self.team.slug})"
