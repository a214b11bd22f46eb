"""The runtime is a plain-Python core: it must never import Django or the ``runs`` app."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import agentdesk.runtime

RUNTIME_DIR = Path(agentdesk.runtime.__file__).parent
THIRD_PARTY = {"openai", "pydantic", "pydantic_core", "tenacity", "pybreaker", "structlog", "httpx",
               "tiktoken",  # tokens.py counts prompts with the model's own encoding
               "jsonschema"}  # tools and agents described by a JSON schema (MCP, admin)
OWN_PACKAGE = "agentdesk.runtime"


def imported_modules(source: str, package: str) -> list[str]:
    """Absolute names of everything ``source`` (a module in ``package``) imports."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                names.append(".".join([*base, *([node.module] if node.module else [])]))
            else:
                names.append(node.module or "")
    return names


def is_allowed(name: str) -> bool:
    top = name.split(".")[0]
    if name == OWN_PACKAGE or name.startswith(OWN_PACKAGE + "."):
        return True
    return top in THIRD_PARTY or (top in sys.stdlib_module_names and top != "agentdesk")


def violations() -> list[str]:
    found = []
    for path in sorted(RUNTIME_DIR.rglob("*.py")):
        rel = path.relative_to(RUNTIME_DIR).with_suffix("")
        package = ".".join([OWN_PACKAGE, *rel.parts[:-1]])
        for name in imported_modules(path.read_text(), package):
            if not is_allowed(name):
                found.append(f"{path.relative_to(RUNTIME_DIR.parent.parent)} imports {name}")
    return found


def test_runtime_imports_only_stdlib_and_the_allowed_libraries():
    assert len(list(RUNTIME_DIR.rglob("*.py"))) >= 8
    assert violations() == []


def test_the_checker_catches_django_runs_and_escapes_from_the_package():
    pkg = OWN_PACKAGE
    assert imported_modules("import django.db", pkg) == ["django.db"]
    assert imported_modules("from runs.models import Run", pkg) == ["runs.models"]
    assert imported_modules("from ..agents import get_agent", pkg) == ["agentdesk.agents"]
    assert imported_modules("from . import loop", pkg) == ["agentdesk.runtime"]
    assert imported_modules("from .state import RunState", pkg) == ["agentdesk.runtime.state"]
    assert imported_modules("def f():\n    import django\n", pkg) == ["django"]
    for bad in ["django.db", "runs.models", "agentdesk.agents", "agentdesk", "celery", "requests"]:
        assert not is_allowed(bad), bad
    for good in ["json", "openai", "pydantic", "tenacity", "agentdesk.runtime.state"]:
        assert is_allowed(good), good
