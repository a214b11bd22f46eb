"""Where agents come from: ``module:attribute`` paths (Django's ``AGENTDESK_AGENTS``
setting) and the ``agentdesk.agents`` entry-point group of installed packages.

Plain Python (no Django), so the runtime's tests and any script can use it. Agents load
once, on first use, and stay cached; ``configure`` (called by ``runs`` when the setting is
read or changed) starts again. A source that does not load is kept in ``problems`` rather
than raised: the other agents still work, and ``runs.checks`` turns each problem into a
system check error naming it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from agentdesk.runtime.agent import AgentSpec

ENTRY_POINT_GROUP = "agentdesk.agents"
# The shipped demo agent, used when nothing configures the paths (as settings.py's default).
DEFAULT_PATHS: tuple[str, ...] = ("agentdesk.agents.support_refunds.agent:AGENT",)


@dataclass(frozen=True)
class Problem:
    """A source that gave no agent, or a second agent for a slug already taken."""

    source: str
    message: str
    hint: str


class AgentLoadError(Exception):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def load_path(path: str) -> AgentSpec:
    """The ``AgentSpec`` a ``module:attribute`` path names; AgentLoadError if it does not."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise AgentLoadError(f"{path!r} is not a 'module:attribute' path.",
                             "Write it as e.g. 'my_agents.refunds:AGENT'.")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ModuleNotFoundError, or any error raised while importing
        raise AgentLoadError(f"module {module_name!r} does not import: "
                             f"{type(exc).__name__}: {exc}",
                             "Install the agent's package (pip install …) or fix the path.",
                             ) from exc
    try:
        value = getattr(module, attribute)
    except AttributeError:
        raise AgentLoadError(f"module {module_name!r} has no attribute {attribute!r}.",
                             "Name the module-level AgentSpec, e.g. 'module:AGENT'.") from None
    return _spec(value)


def _spec(value: object) -> AgentSpec:
    if not isinstance(value, AgentSpec):
        raise AgentLoadError(f"it names a value of type {type(value).__name__}, "
                             "not an AgentSpec.",
                             "Point at an agentdesk.runtime.agent.AgentSpec instance.")
    return value


def _entry_point_source(ep: EntryPoint) -> str:
    package = ep.dist.name if ep.dist is not None else "an unknown package"
    return f"entry point {ep.name!r} = {ep.value!r} of package {package!r}"


def _load_entry_point(ep: EntryPoint) -> AgentSpec:
    try:
        value = ep.load()
    except Exception as exc:  # a missing module or attribute, or an error while importing
        raise AgentLoadError(f"it does not load: {type(exc).__name__}: {exc}",
                             "Reinstall the package, or fix its [project.entry-points"
                             f".\"{ENTRY_POINT_GROUP}\"] table.") from exc
    return _spec(value)


@dataclass(frozen=True)
class Loaded:
    agents: dict[str, AgentSpec]
    sources: dict[str, str]
    problems: tuple[Problem, ...]


def discover(paths: Iterable[str]) -> Loaded:
    """Load every agent the paths and the installed entry points name (no caching)."""
    agents: dict[str, AgentSpec] = {}
    sources: dict[str, str] = {}
    problems: list[Problem] = []

    def add(source: str, load) -> None:
        try:
            spec = load()
        except AgentLoadError as exc:
            problems.append(Problem(source, exc.message, exc.hint))
            return
        taken = agents.get(spec.slug)
        if taken is spec:  # the same object named twice (a path and its own entry point)
            return
        if taken is not None:
            problems.append(Problem(source, (
                f"agent slug {spec.slug!r} is given by both {sources[spec.slug]} and {source}."),
                "Remove one of them, or give one agent another slug."))
            return
        agents[spec.slug], sources[spec.slug] = spec, source

    for path in (p.strip() for p in paths):
        if path:
            add(f"AGENTDESK_AGENTS path {path!r}", lambda path=path: load_path(path))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        add(_entry_point_source(ep), lambda ep=ep: _load_entry_point(ep))
    return Loaded(agents, sources, tuple(problems))


class Registry(Mapping[str, AgentSpec]):
    """The installed agents by slug, loaded on first use and cached."""

    def __init__(self, paths: Iterable[str] = DEFAULT_PATHS) -> None:
        self._paths = tuple(paths)
        self._loaded: Loaded | None = None

    def configure(self, paths: Iterable[str]) -> None:
        """Use these paths from now on (loaded again on next use)."""
        self._paths, self._loaded = tuple(paths), None

    def loaded(self) -> Loaded:
        if self._loaded is None:
            self._loaded = discover(self._paths)
        return self._loaded

    @property
    def problems(self) -> tuple[Problem, ...]:
        return self.loaded().problems

    def source_of(self, slug: str) -> str | None:
        return self.loaded().sources.get(slug)

    def __getitem__(self, slug: str) -> AgentSpec:
        return self.loaded().agents[slug]

    def __iter__(self) -> Iterator[str]:
        return iter(self.loaded().agents)

    def __len__(self) -> int:
        return len(self.loaded().agents)
