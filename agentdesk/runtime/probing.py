"""Finding out what a model's endpoint accepts, with a handful of small requests.

The catalogue's capability fields are only as good as whoever filled them in; a wrong one
fails every run at its first model call. ``probe`` asks the endpoint directly, one
capability at a time, with requests of a few tokens each:

1. ``max_tokens`` + ``temperature: 0`` — accepted: not a reasoning model. Refused: try
   ``max_completion_tokens`` alone — accepted: a reasoning model; then whether it takes
   the profile's ``reasoning_effort`` (or ``low``).
2. ``tools`` with ``tool_choice: "required"`` — a tool call back: native; refused, or
   answered without a call: prompted.
3. ``response_format`` ``json_schema``, else ``json_object`` — JSON back (or a reply cut
   off at the token limit): that one; refused or ignored: the next; neither: prompt.
4. ``logprobs: true`` — log-probabilities back: supported.

Whether replies carry ``usage`` is noted on the way (not a profile field: a reply without
it is billed at the reserved worst case). Everything the endpoint said is kept in the
report, so an admin can see why a capability was set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai

from .endpoint_errors import error_detail, is_context_overflow, refusal
from .json_text import find_json_object
from .llm import ModelError
from .profiles import ModelProfile, ReasoningEffort, StructuredOutput, ToolCalling

CAPABILITIES = ("reasoning", "reasoning_effort", "tool_calling", "structured_output", "logprobs")
"""The profile fields a probe sets, in the order it finds them."""

PING_TOOL: dict[str, Any] = {"type": "function", "function": {
    "name": "ping", "description": "Answers pong. Call it when asked to.",
    "parameters": {"type": "object", "properties": {}, "required": []}}}
PROBE_SCHEMA: dict[str, Any] = {"type": "json_schema", "json_schema": {
    "name": "probe", "strict": True, "schema": {
        "type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
        "additionalProperties": False}}}
SAY_OK = [{"role": "user", "content": "Reply with the single word: ok"}]
SAY_JSON = [{"role": "user", "content": 'Reply with the JSON object {"ok": true} and nothing '
                                        "else."}]
CALL_PING = [{"role": "user", "content": "Call the ping tool."}]


@dataclass(frozen=True)
class Answer:
    """One probe request and what came back (``data`` None: an error or unreadable body)."""

    probe: str
    body: dict[str, Any]
    status: int
    data: dict[str, Any] | None = None
    error: openai.APIStatusError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.data is not None

    def refused(self, *names: str) -> bool:
        """The endpoint refused one of ``names`` (by its ``param`` or its message)."""
        found = refusal(self.error, self.body) if self.error is not None else None
        return found is not None and any(name in found.parameter for name in names)

    def choice(self) -> dict[str, Any]:
        """The first choice of a readable answer ({} when there is none)."""
        choices = (self.data or {}).get("choices")
        first = choices[0] if isinstance(choices, list) and choices else None
        return first if isinstance(first, dict) else {}

    def message(self) -> dict[str, Any]:
        message = self.choice().get("message")
        return message if isinstance(message, dict) else {}

    def finish_reason(self) -> str:
        return str(self.choice().get("finish_reason") or "")

    def summary(self) -> str:
        if self.error is not None:
            return f"HTTP {self.status}: {error_detail(self.error)}"
        if self.data is None:
            return f"HTTP {self.status}: unreadable answer"
        message = self.message()
        if message.get("tool_calls"):
            return f"HTTP {self.status}: tool call {message['tool_calls'][0].get('function')}"
        content = str(message.get("content") or "")
        logprobs = ", with logprobs" if self.choice().get("logprobs") else ""
        return (f"HTTP {self.status}: {content[:60]!r} "
                f"({self.finish_reason() or 'no finish reason'}{logprobs})")


@dataclass
class ProbeResult:
    """What the endpoint accepts, as profile fields, and the evidence for each."""

    model: str
    found: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)
    usage_reported: bool = True
    answers: list[Answer] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        """JSON for the catalogue row's ``probe_report``."""
        return {
            "found": {name: str(value) if not isinstance(value, bool) else value
                      for name, value in self.found.items()},
            "evidence": self.evidence,
            "usage_reported": self.usage_reported,
            "requests": [{"probe": a.probe, "status": a.status, "answer": a.summary()}
                         for a in self.answers],
        }


class Prober:
    """Sends the probes to one OpenAI-compatible endpoint."""

    def __init__(self, *, base_url: str | None, api_key: str, timeout: float = 60.0,
                 max_retries: int = 2) -> None:
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout,
                                     max_retries=max_retries)

    def probe(self, current: ModelProfile) -> ProbeResult:
        """Probe ``current.name``; raises ModelError when the endpoint cannot be probed at
        all (unreachable, unknown model, broken answers)."""
        result = ProbeResult(model=current.name)
        limits = self._reasoning(current, result)
        self._tools(current.name, limits, result)
        self._structured_output(current.name, limits, result)
        self._logprobs(current.name, limits, result)
        return result

    # -- the probes ------------------------------------------------------------------------

    def _reasoning(self, current: ModelProfile, result: ProbeResult) -> dict[str, Any]:
        """Find the reasoning fields; return the token parameters later probes send."""
        plain = self._send(result, "max_tokens", current.name, SAY_OK,
                           max_tokens=16, temperature=0)
        if plain.ok:
            self._found(result, "reasoning", False, plain)
            self._found(result, "reasoning_effort", ReasoningEffort.NONE, plain)
            return {"max_tokens": 256, "temperature": 0}
        if not plain.refused("max_tokens", "temperature"):
            raise _unprobeable(current.name, plain)
        cap = self._send(result, "max_completion_tokens", current.name, SAY_OK,
                         max_completion_tokens=256)
        if not cap.ok:
            raise _unprobeable(current.name, cap)
        self._found(result, "reasoning", True, plain, cap)
        effort = current.reasoning_effort or ReasoningEffort.LOW
        tried = self._send(result, "reasoning_effort", current.name, SAY_OK,
                           max_completion_tokens=256, reasoning_effort=str(effort))
        accepted = ReasoningEffort(current.reasoning_effort) if tried.ok else ReasoningEffort.NONE
        self._found(result, "reasoning_effort", accepted, tried)
        limits: dict[str, Any] = {"max_completion_tokens": 1024}
        if tried.ok:
            limits["reasoning_effort"] = str(effort)
        return limits

    def _tools(self, model: str, limits: dict[str, Any], result: ProbeResult) -> None:
        answer = self._send(result, "tools", model, CALL_PING, tools=[PING_TOOL],
                            tool_choice="required", **limits)
        if answer.refused("tool_choice") and not answer.refused("tools"):
            answer = self._send(result, "tools", model, CALL_PING, tools=[PING_TOOL], **limits)
        native = answer.ok and bool(answer.message().get("tool_calls"))
        if not answer.ok and not answer.refused("tools", "tool_choice") and answer.error:
            raise _unprobeable(model, answer)
        self._found(result, "tool_calling",
                    ToolCalling.NATIVE if native else ToolCalling.PROMPTED, answer)

    def _structured_output(self, model: str, limits: dict[str, Any],
                           result: ProbeResult) -> None:
        tried = []
        for mode, response_format in ((StructuredOutput.JSON_SCHEMA, PROBE_SCHEMA),
                                      (StructuredOutput.JSON_OBJECT, {"type": "json_object"})):
            answer = self._send(result, f"response_format {mode}", model, SAY_JSON,
                                response_format=response_format, **limits)
            tried.append(answer)
            content = answer.message().get("content")
            if answer.ok and (find_json_object(content if isinstance(content, str) else None)
                              is not None or answer.finish_reason() == "length"):
                self._found(result, "structured_output", mode, *tried)
                return
        self._found(result, "structured_output", StructuredOutput.PROMPT, *tried)

    def _logprobs(self, model: str, limits: dict[str, Any], result: ProbeResult) -> None:
        answer = self._send(result, "logprobs", model, SAY_OK, logprobs=True, **limits)
        logprobs = answer.choice().get("logprobs")
        supported = answer.ok and isinstance(logprobs, dict) and bool(logprobs.get("content"))
        self._found(result, "logprobs", supported, answer)

    # -- plumbing --------------------------------------------------------------------------

    def _send(self, result: ProbeResult, probe: str, model: str,
              messages: list[dict[str, Any]], **params: Any) -> Answer:
        body = {"model": model, "messages": messages, **params}
        try:
            response = self._client.post("/chat/completions", body=body, cast_to=httpx.Response)
        except openai.APIStatusError as exc:
            answer = Answer(probe, body, exc.status_code, error=exc)
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise ModelError(f"{model}: cannot reach the endpoint: {exc}") from exc
        else:
            answer = Answer(probe, body, response.status_code, data=_json(response))
            if answer.data is not None and "usage" not in answer.data:
                result.usage_reported = False
        result.answers.append(answer)
        return answer

    @staticmethod
    def _found(result: ProbeResult, name: str, value: Any, *answers: Answer) -> None:
        result.found[name] = value
        result.evidence[name] = "; ".join(f"{a.probe}: {a.summary()}" for a in answers)


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        data = json.loads(response.text)
    except (json.JSONDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or (data.get("error") and not data.get("choices")):
        return None
    return data


def _unprobeable(model: str, answer: Answer) -> ModelError:
    if answer.error is not None and answer.status == 404:
        return ModelError(f"{model}: the endpoint does not serve this model "
                          f"(HTTP 404: {error_detail(answer.error)})")
    if answer.error is not None and is_context_overflow(answer.error):
        return ModelError(f"{model}: even a tiny prompt overflows the context: "
                          f"{error_detail(answer.error)}")
    return ModelError(f"{model}: the endpoint did not answer the {answer.probe} probe: "
                      f"{answer.summary()}")
