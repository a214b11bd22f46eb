"""The tool registry and the resilient way to call a tool.

Arguments are a pydantic model (tools in code) or a JSON schema (tools of an MCP server, HTTP
tools defined in admin), so a model-proposed call is validated before anything runs, the
same way for both.
Every schema handed to the model gains a required ``confidence`` field: it is how the
model says how sure it is that *this* call is right, which the loop compares with the
policy's threshold before acting.

Tools are unreliable by default (DESIGN principle 3). ``execute_tool`` gives every call a
per-attempt timeout, retries *transient* failures only (``TransientToolError``, or what a
tool lists in ``retry_on``) with exponential backoff and jitter, and consults a per-tool
circuit breaker shared by all workers. Whatever happens, the answer is a ``ToolOutcome``
with either the tool's real result or an error: never an invented output.
"""

from __future__ import annotations

import contextvars
import copy
import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jsonschema
from pydantic import BaseModel, ValidationError
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from .breaker import BreakerStore
from .knowledge import Knowledge, NoKnowledge

# Backoff between attempts: 0.05s, 0.1s, 0.2s … plus up to 0.05s of jitter (so workers
# retrying one backend do not hit it in lockstep), at most 2s. It is the curve of tenacity's
# ``wait_exponential_jitter(initial=0.05, max=2, jitter=0.05)``, composed from parts whose
# meaning is the same on every tenacity 9.x (that function's ``initial`` was renamed).
BACKOFF = wait_exponential(multiplier=0.05, max=1.95) + wait_random(0, 0.05)
TOOL_THREADS = 16


class ToolError(Exception):
    """A tool failed for good (bad input, not found, refused): retrying cannot help.

    The failure is recorded as is; the agent never sees invented output.
    """


class TransientToolError(ToolError):
    """A failure that may pass (a 503 from a backend, a timeout): retried with backoff."""


class ToolTimeoutError(TransientToolError):
    """An attempt ran past the tool's ``timeout_s``."""


class ToolOutcomeUnknownError(ToolError):
    """A side-effecting call timed out: it may or may not have taken effect. Never retried."""


class CircuitOpenError(ToolError):
    """The tool's breaker is open: the call was refused without reaching the tool."""

    def __init__(self, tool: str, until: float | None) -> None:
        when = (
            datetime.fromtimestamp(until, UTC).strftime("%H:%M:%S UTC")
            if until is not None
            else "its cool-down ends"
        )
        super().__init__(f"circuit open for {tool} until {when}: the tool was not called")
        self.until = until


class ArgumentsInvalid(ToolError):
    """Arguments that do not fit the tool's schema; ``fields`` names each bad one."""

    def __init__(self, tool: str, fields: dict[str, list[str]]) -> None:
        detail = "; ".join(f"{name or 'arguments'}: {', '.join(msgs)}"
                           for name, msgs in fields.items())
        super().__init__(f"invalid arguments for {tool}: {detail}")
        self.fields = fields


@dataclass(frozen=True)
class ToolOutcome:
    """What one (possibly retried) tool call came to: the real result, or an error."""

    result: dict[str, Any] | None
    error: str
    attempts: int  # calls that reached the tool (0: invalid arguments or breaker open)
    latency_ms: int
    breaker_open: bool = False
    outcome_unknown: bool = False  # a side effect timed out: escalate, do not repeat

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class ToolContext:
    run_id: str
    idempotency_key: str  # run id + step: send it with every side effect
    knowledge: Knowledge = field(default_factory=NoKnowledge)  # the agent's documents


@dataclass(frozen=True, eq=False)  # identity-hashed: a JSON schema (a dict) is not hashable
class Tool:
    """One tool. ``fn(ctx, args)`` gets the validated arguments: an instance of
    ``args_model``, or for a tool described by ``args_schema`` the checked dict."""

    name: str
    description: str
    fn: Callable[[ToolContext, Any], dict[str, Any]]
    args_model: type[BaseModel] | None = None
    args_schema: dict[str, Any] | None = None
    side_effect: bool = False
    timeout_s: float = 10.0  # per attempt
    max_attempts: int = 3  # 1 = never retried
    retry_on: tuple[type[Exception], ...] = (TransientToolError,)
    _built: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if (self.args_model is None) == (self.args_schema is None):
            raise ValueError(f"tool {self.name!r}: give exactly one of args_model, args_schema")
        if self.args_schema is not None:
            try:
                jsonschema.Draft202012Validator.check_schema(self.args_schema)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"tool {self.name!r}: its argument schema is not a valid "
                                 f"JSON schema: {exc.message}") from None

    def parse(self, args: dict[str, Any]) -> Any:
        """The arguments ``fn`` receives; ArgumentsInvalid if they do not fit."""
        if self.args_model is not None:
            try:
                return self.args_model.model_validate(args)
            except ValidationError as exc:
                fields: dict[str, list[str]] = {}
                for err in exc.errors(include_url=False):
                    fields.setdefault(".".join(str(p) for p in err["loc"]), []).append(
                        err["msg"])
                raise ArgumentsInvalid(self.name, fields) from None
        validator = self._built.get("validator")
        if validator is None:
            validator = self._built["validator"] = jsonschema.Draft202012Validator(
                self.args_schema or {})
        problems = list(validator.iter_errors(args))
        if problems:
            fields = {}
            for err in problems:
                fields.setdefault(".".join(str(p) for p in err.absolute_path), []).append(
                    err.message)
            raise ArgumentsInvalid(self.name, fields)
        return args

    def validate(self, args: dict[str, Any]) -> dict[str, Any]:
        """The arguments as JSON, checked; ArgumentsInvalid if they do not fit."""
        parsed = self.parse(args)
        return parsed.model_dump(mode="json") if isinstance(parsed, BaseModel) else parsed

    def json_schema(self) -> dict[str, Any]:
        if self.args_model is not None:
            return self.args_model.model_json_schema()
        return self.args_schema or {"type": "object"}

    def openai_schema(self) -> dict[str, Any]:
        """The tool as the model sees it. Built once per tool (pydantic regenerates a JSON
        schema on every call, ~0.5 ms of every model step) and kept on the tool itself, not
        in a global cache: agents defined in admin build new tools for every run. Callers
        must not mutate the result (it is shared)."""
        cached = self._built.get("openai")
        if cached is None:
            cached = self._built["openai"] = _openai_schema(self)
        return cached


def _openai_schema(tool: Tool) -> dict[str, Any]:
    params = copy.deepcopy(tool.json_schema())
    params.setdefault("type", "object")
    params.setdefault("properties", {})["confidence"] = {
        "type": "number",
        "minimum": 0,
        "maximum": 1,
        "description": "How sure you are that this call is the right next action (0-1).",
    }
    params["required"] = [*params.get("required", []), "confidence"]
    params.pop("title", None)
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": params},
    }


@dataclass
class ToolRegistry:
    tools: dict[str, Tool] = field(default_factory=dict)

    def add(self, tool: Tool) -> Tool:
        if tool.name in self.tools:
            raise ValueError(f"two tools are named {tool.name!r}")
        self.tools[tool.name] = tool
        return tool

    def tool(
        self,
        *,
        args: type[BaseModel],
        side_effect: bool = False,
        name: str | None = None,
        timeout_s: float = 10.0,
        max_attempts: int = 3,
        retry_on: tuple[type[Exception], ...] = (TransientToolError,),
    ) -> Callable[[Callable[[ToolContext, Any], dict[str, Any]]], Tool]:
        """Decorator: register ``fn(ctx, args) -> dict`` under its name."""

        def register(fn: Callable[[ToolContext, Any], dict[str, Any]]) -> Tool:
            tool = Tool(
                name=name or fn.__name__,
                description=(fn.__doc__ or "").strip(),
                args_model=args,
                fn=fn,
                side_effect=side_effect,
                timeout_s=timeout_s,
                max_attempts=max_attempts,
                retry_on=retry_on,
            )
            return self.add(tool)

        return register

    def get(self, name: str) -> Tool | None:
        return self.tools.get(name)

    def openai_schemas(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        chosen = names if names is not None else list(self.tools)
        return [self.tools[n].openai_schema() for n in chosen]


# -- calling a tool ------------------------------------------------------------------------


def execute_tool(
    tool: Tool,
    ctx: ToolContext,
    raw_args: dict[str, Any],
    *,
    breaker: BreakerStore | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ToolOutcome:
    """Validate and call ``tool`` with a timeout, retries and its circuit breaker.

    Each attempt asks the breaker first and reports to it after: a transient error, a
    timeout or a crash of the tool counts as a failure of its backend; a permanent
    ``ToolError`` (e.g. "not found") means the backend answered, so it counts as a success.
    Only transient errors are retried, and never a side-effecting call that timed out.
    """
    started = clock()
    attempts = 0
    last_error = ""

    def outcome(result: dict[str, Any] | None, error: str, **flags: bool) -> ToolOutcome:
        latency = int((clock() - started) * 1000)
        return ToolOutcome(result, error, attempts, latency, **flags)

    try:
        parsed = tool.parse(raw_args)
    except ArgumentsInvalid as exc:
        return outcome(None, str(exc))

    def attempt() -> dict[str, Any]:
        nonlocal attempts, last_error
        if breaker is not None:
            allowed, until = breaker.allow(tool.name)
            if not allowed:
                raise CircuitOpenError(tool.name, until)
        attempts += 1
        try:
            result = _call_with_timeout(tool, ctx, parsed)
        except Exception as exc:
            last_error = _message(tool, exc)
            if breaker is not None:
                if _is_backend_failure(tool, exc):
                    breaker.record_failure(tool.name)
                else:
                    breaker.record_success(tool.name)
            raise
        if breaker is not None:
            breaker.record_success(tool.name)
        return result

    retrying = Retrying(
        stop=stop_after_attempt(max(1, tool.max_attempts)),
        wait=BACKOFF,
        retry=retry_if_exception(lambda exc: _is_retryable(tool, exc)),
        sleep=sleep,
        reraise=True,
    )
    try:
        result = retrying(attempt)
    except CircuitOpenError as exc:
        error = f"{last_error}; then {exc}" if last_error else str(exc)
        return outcome(None, error, breaker_open=True)
    except ToolOutcomeUnknownError as exc:
        return outcome(None, str(exc), outcome_unknown=True)
    except Exception as exc:  # a tool's bug is a tool failure, not a crashed worker
        return outcome(None, _message(tool, exc))
    return outcome(result, "")


def _is_retryable(tool: Tool, exc: BaseException) -> bool:
    if isinstance(exc, CircuitOpenError | ToolOutcomeUnknownError):
        return False
    return isinstance(exc, tool.retry_on)


def _is_backend_failure(tool: Tool, exc: Exception) -> bool:
    if isinstance(exc, TransientToolError | ToolOutcomeUnknownError):
        return True
    return isinstance(exc, tool.retry_on) or not isinstance(exc, ToolError)


def _message(tool: Tool, exc: Exception) -> str:
    if isinstance(exc, ToolError):
        return str(exc)
    return f"{tool.name} raised {type(exc).__name__}: {exc}"


def _call_with_timeout(tool: Tool, ctx: ToolContext, parsed: BaseModel) -> dict[str, Any]:
    """One attempt, abandoned after ``tool.timeout_s``.

    A thread cannot be killed: a timed-out call runs on in its pool thread until it returns,
    so tools should bound their own I/O too. The caller's context variables (log binding)
    go with the call.
    """
    run = contextvars.copy_context().run
    future = _executor().submit(run, tool.fn, ctx, parsed)
    done, _ = wait_for_futures([future], timeout=tool.timeout_s)
    if done:
        return _json_result(tool, future.result())
    limit = f"{tool.timeout_s:g}s"
    if future.cancel():  # it never started: nothing happened, so trying again is safe
        raise TransientToolError(f"{tool.name} did not start within {limit}: tool threads busy")
    if tool.side_effect:
        raise ToolOutcomeUnknownError(
            f"{tool.name} timed out after {limit}; its outcome is unknown (it may have taken "
            "effect), so it was not retried"
        )
    raise ToolTimeoutError(f"{tool.name} timed out after {limit}")


def _json_result(tool: Tool, result: Any) -> dict[str, Any]:
    """A result the model and the ledger can hold: a JSON object. Anything else is the
    tool's failure, recorded as such (never coerced into something it did not say)."""
    if not isinstance(result, dict):
        raise ToolError(f"{tool.name} returned {type(result).__name__}, not a JSON object")
    try:
        return json.loads(json.dumps(result, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ToolError(f"{tool.name} returned a result that is not JSON: {exc}") from None


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(TOOL_THREADS, thread_name_prefix="agentdesk-tool")
    return _pool


def _forget_pool_in_child() -> None:
    """A forked worker (Celery prefork) inherits the pool object but not its threads."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_in_child)
