"""Admin for agents and the tools an admin adds without code (MCP servers, HTTP tools).

The rules of a valid definition live in the services (``agent_specs.definition_problems``,
``mcp_servers.refresh``, ``agentdesk.tools.http.problems``); the forms only show them as
field errors.
"""

from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.contrib import admin
from django.utils.html import format_html, format_html_join

from . import agent_specs, mcp_servers
from .admin_base import AuditedAdmin
from .knowledge_admin import KnowledgeDocumentInline
from .models import Agent, HttpTool, McpServer

NAME_RE = r"^[A-Za-z0-9_-]{1,64}$"


def _add_errors(form: forms.ModelForm, found: dict[str, list[str]]) -> None:
    for field, messages in found.items():
        for message in messages:
            form.add_error(field if field in form.fields else None, message)


def _env_map(value: object, what: str) -> dict[str, str]:
    """A ``{name: ENV_VAR_NAME}`` object, checked (values are names, never secrets)."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise forms.ValidationError(f'Give a JSON object {{"{what}": "ENV_VAR_NAME"}}.')
    bad = [v for v in value.values() if not v.replace("_", "").isalnum() or v[:1].isdigit()]
    if bad:
        raise forms.ValidationError(
            f"{', '.join(bad)}: write the name of an environment variable (letters, digits, "
            "'_'), not its value — secrets are read from the worker's environment.")
    return value


# -- agents --------------------------------------------------------------------------------


class AgentForm(forms.ModelForm):
    code_tools = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Tools from installed packages (agents defined here only).")

    class Meta:
        model = Agent
        fields = ["team", "slug", "name", "policy", "enabled", "instructions", "input_schema",
                  "code_tools", "mcp_servers", "http_tools"]
        widgets = {"instructions": forms.Textarea(attrs={"rows": 8})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["code_tools"].choices = [
            (name, f"{name}{' (changes data)' if tool.side_effect else ''}")
            for name, tool in sorted(agent_specs.code_tools().items())]

    def clean(self) -> dict:
        data = super().clean()
        team = data.get("team")
        found = agent_specs.definition_problems(
            team_id=team.pk if team else None, slug=data.get("slug") or "",
            instructions=data.get("instructions") or "", input_schema=data.get("input_schema"),
            code_tool_names=list(data.get("code_tools") or []),
            mcp_server_rows=list(data.get("mcp_servers") or []),
            http_tool_rows=list(data.get("http_tools") or []))
        _add_errors(self, found)
        policy = data.get("policy")
        if team is not None and policy is not None and policy.team_id != team.pk:
            self.add_error("policy", f"{policy} is a policy of another team: choose one of "
                                     f"{team}'s policies.")
        return data


@admin.register(Agent)
class AgentAdmin(AuditedAdmin):
    form = AgentForm
    list_display = ("slug", "name", "team", "policy", "enabled", "implementation")
    list_filter = ("team", "enabled")
    readonly_fields = ("implementation", "tools")
    inlines = [KnowledgeDocumentInline]
    fieldsets = [
        (None, {"fields": ["team", "slug", "name", "policy", "enabled", "implementation"]}),
        ("Defined here (no code)", {
            "description": "Leave these empty for an installed agent: its code gives them.",
            "fields": ["instructions", "input_schema", "code_tools", "mcp_servers",
                       "http_tools", "tools"]}),
    ]

    @admin.display(description="implementation")
    def implementation(self, obj: Agent | None) -> str:
        """Installed code, a definition made here, or neither (submissions are then refused
        with ``agent_not_installed``)."""
        if obj is None or not obj.slug:
            return "—"
        if agent_specs.installed(obj.slug) is not None:
            return "installed"
        if obj.defined_in_admin:
            return "defined here"
        return "not installed — add its package or AGENTDESK_AGENTS, or write instructions"

    @admin.display(description="tools the agent gets")
    def tools(self, obj: Agent | None) -> str:
        spec = agent_specs.spec_for(obj) if obj is not None and obj.pk else None
        if spec is None or not spec.tools.tools:
            return "—"
        return format_html("<ul>{}</ul>", format_html_join(
            "", "<li><code>{}</code> — {}</li>",
            ((name, "changes data" if tool.side_effect else "read-only")
             for name, tool in spec.tools.tools.items())))

    def save_model(self, request, obj, form, change) -> None:
        spec = agent_specs.installed(obj.slug)
        if spec is not None:  # an installed agent's schema is its code's, kept in sync
            obj.input_schema = spec.input_json_schema()
        super().save_model(request, obj, form, change)


# -- MCP servers ---------------------------------------------------------------------------


class McpServerForm(forms.ModelForm):
    class Meta:
        model = McpServer
        fields = ["team", "name", "transport", "url", "command", "header_env", "env",
                  "timeout_s", "enabled"]

    def clean_header_env(self) -> dict[str, str]:
        return _env_map(self.cleaned_data.get("header_env"), "Authorization")

    def clean_env(self) -> dict[str, str]:
        return _env_map(self.cleaned_data.get("env"), "API_TOKEN")

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        row = McpServer(**{k: v for k, v in data.items() if k in
                           {"team", "name", "transport", "url", "command", "header_env", "env",
                            "timeout_s", "enabled"}})
        found = mcp_servers.problems(row, allowed_commands=settings.MCP_STDIO_COMMANDS)
        if not found and data.get("enabled"):
            try:  # the tools are listed now: a server that cannot be reached is not saved
                self.listing = mcp_servers.list_now(row)
            except mcp_servers.Unavailable as exc:
                found = {"url" if row.transport == McpServer.Transport.HTTP else "command":
                         [f"Could not list the server's tools: {exc}"]}
        _add_errors(self, found)
        return data


@admin.register(McpServer)
class McpServerAdmin(AuditedAdmin):
    form = McpServerForm
    list_display = ("name", "team", "transport", "endpoint", "enabled", "tool_count",
                    "listed_at")
    list_filter = ("team", "transport", "enabled")
    readonly_fields = ("tools_listed", "listed_at")

    @admin.display(description="URL or command")
    def endpoint(self, obj: McpServer) -> str:
        return obj.url or obj.command

    @admin.display(description="tools")
    def tool_count(self, obj: McpServer) -> int:
        return len(obj.listing or ())

    @admin.display(description="tools listed")
    def tools_listed(self, obj: McpServer) -> str:
        if not obj.listing:
            return "—"
        return format_html("<ul>{}</ul>", format_html_join(
            "", "<li><code>{}</code> — {}: {}</li>",
            ((t["name"], "read-only" if mcp_servers.read_only(t) else "changes data",
              t.get("description", "")) for t in obj.listing)))

    def save_model(self, request, obj, form, change) -> None:
        listing = getattr(form, "listing", None)
        if listing is not None:
            mcp_servers.keep_listing(obj, listing)
        super().save_model(request, obj, form, change)


# -- HTTP tools ----------------------------------------------------------------------------


class HttpToolForm(forms.ModelForm):
    name = forms.RegexField(regex=NAME_RE, max_length=64,
                            help_text="Letters, digits, '_' and '-' (the name the model calls).")

    class Meta:
        model = HttpTool
        fields = ["team", "name", "description", "method", "url_template", "args_schema",
                  "header_env", "read_only", "timeout_s"]

    def clean_header_env(self) -> dict[str, str]:
        return _env_map(self.cleaned_data.get("header_env"), "Authorization")

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        row = HttpTool(**{k: v for k, v in data.items() if k in self.Meta.fields})
        found = agent_specs.http_tool_problems(row)
        _add_errors(self, found)
        return data


@admin.register(HttpTool)
class HttpToolAdmin(AuditedAdmin):
    form = HttpToolForm
    list_display = ("name", "team", "method", "url_template", "read_only")
    list_filter = ("team", "method", "read_only")
    readonly_fields = ("schema_shown",)

    @admin.display(description="schema the model sees")
    def schema_shown(self, obj: HttpTool) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.args_schema, indent=2))


__all__ = ["AgentAdmin", "HttpToolAdmin", "McpServerAdmin"]
