"""``manage.py startagent``'s templates and the code that fills them in.

A new agent starts as its own installable package, not as a folder in this repository: the
team that owns it versions, tests and deploys it on its own, and AgentDesk finds it through
its ``agentdesk.agents`` entry point. ``template/`` holds the files; a ``{{ key }}`` in a
file is replaced by the value of that key and ``__package__`` in a path by the package's
name; the ``.tmpl`` suffix keeps the templates out of linters, tests and imports until they
are rendered. Plain Python (no Django), so the command stays a thin wrapper.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

TEMPLATE_DIR = Path(__file__).parent / "template"
SUFFIX = ".tmpl"
PACKAGE_PLACEHOLDER = "__package__"
NAME_RE = re.compile(r"^[a-z](?:[a-z0-9_-]{0,48}[a-z0-9])?$")
_KEY_RE = re.compile(r"\{\{ (\w+) \}\}")


class ScaffoldError(Exception):
    """A name or a place the scaffold cannot use; the message says why and what to do."""


@dataclass(frozen=True)
class Names:
    """What NAME becomes: the folder and distribution, the import package, the agent slug
    (dashes, as the agent registry wants) and a title for people."""

    project: str
    package: str
    slug: str
    title: str

    @classmethod
    def from_name(cls, name: str) -> Names:
        check_name(name)
        words = re.split(r"[-_]", name)
        return cls(project=name, package=name.replace("-", "_"), slug=name.replace("_", "-"),
                   title=" ".join(words).capitalize())

    def values(self) -> dict[str, str]:
        return {"project": self.project, "package": self.package, "slug": self.slug,
                "title": self.title}


def check_name(name: str) -> None:
    """NAME must work as a folder, a Python package and an agent slug at once."""
    if not NAME_RE.match(name):
        raise ScaffoldError(
            f"{name!r} is not a valid agent name: use lower-case letters, digits, '-' and "
            "'_', start with a letter, end with a letter or digit, at most 50 characters "
            "(e.g. 'helpdesk' or 'billing-agent').")
    package = name.replace("-", "_")
    if keyword.iskeyword(package):
        raise ScaffoldError(f"{name!r} is a Python keyword and cannot name a package; "
                            f"try e.g. '{name}-agent'.")
    try:
        taken = importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        taken = True
    if taken:
        raise ScaffoldError(f"{name!r} would be imported as {package!r}, which is already an "
                            f"importable Python module; pick another name, e.g. "
                            f"'{name}-agent'.")


def create(name: str, parent: Path | str = ".") -> Path:
    """Write the package for ``name`` into ``parent/name``; returns that folder.

    Nothing is overwritten: an existing folder is an error, and a failure half-way removes
    what was written, so running the command again after fixing the cause just works.
    """
    names = Names.from_name(name)
    parent = Path(parent)
    if not parent.is_dir():
        raise ScaffoldError(f"--directory {str(parent)!r} is not an existing directory.")
    target = parent / names.project
    if target.exists():
        raise ScaffoldError(f"{str(target)!r} already exists; choose another name or "
                            "directory (nothing was overwritten).")
    values = names.values()
    try:
        for source in sorted(TEMPLATE_DIR.rglob(f"*{SUFFIX}")):
            relative = source.relative_to(TEMPLATE_DIR).as_posix()[: -len(SUFFIX)]
            destination = target / relative.replace(PACKAGE_PLACEHOLDER, names.package)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_text(render(source.read_text(encoding="utf-8"), values),
                                   encoding="utf-8")
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target


def render(text: str, values: dict[str, str]) -> str:
    """``text`` with each ``{{ key }}`` replaced; an unknown key is a bug in a template."""

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"template placeholder {{{{ {key} }}}} has no value")
        return values[key]

    return _KEY_RE.sub(value, text)
