"""A project folder loaded into typed Systems and Flows, with every problem found in one pass.

```
seamline.yaml        hub settings (optional)
systems/NAME.yaml    kind, connection (secrets as ${ENV} or {file: path}), owner, budget
flows/NAME.yaml      the contract: source -> mapping -> target, ordering, retry, SLA
mappings/*.py        optional functions named by a flow's mapping
```

`load_project` raises `ProjectError` carrying every `Problem` (file, line, what to do); it never
stops at the first. Secrets are resolved here and never appear in a problem's text.
"""

from __future__ import annotations

import hashlib
import re
import typing
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from seamline.checks.spec import CheckSpec
from seamline.connectors.base import Connector
from seamline.connectors.registry import CONNECTORS
from seamline.engine.mapping import Mapping as CompiledMapping
from seamline.engine.mapping import MappingSpec, compile_mapping, uncovered_values
from seamline.engine.retry import RetryPolicy, exponential
from seamline.errors import Problem, ProjectError
from seamline.landscape.external import ExternalSpec
from seamline.observe.spec import NOTIFIER_KINDS, AlertsSpec, NotifierSpec
from seamline.settings import (
    Duration,
    HubSettings,
    Secret,
    SecretMissing,
    Strict,
    environment_overrides,
    is_secret_ref,
    parse_duration,
    resolve_secret,
)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
Path_ = tuple[str | int, ...]


# --- the files' shapes --------------------------------------------------------------------------


class CircuitSpec(Strict):
    failures: int = Field(default=5, ge=1)
    """Consecutive transient failures that open the circuit."""
    cooldown: Duration = 10.0
    max_cooldown: Duration = 120.0


class BudgetSpec(Strict):
    """One budget per target system, shared by every flow that delivers to it."""

    rate: float | None = Field(default=None, gt=0)
    """Requests per second (token bucket); none means unlimited."""
    burst: int | None = Field(default=None, ge=1)
    concurrency: int = Field(default=32, ge=1, le=1024)
    circuit: CircuitSpec = CircuitSpec()


class SystemSpec(Strict):
    kind: str
    owner: str | None = None
    criticality: Literal["low", "medium", "high", "critical"] = "medium"
    description: str = ""
    connection: dict[str, Any] = Field(default_factory=dict)
    budget: BudgetSpec = BudgetSpec()


class RetrySpec(Strict):
    schedule: list[Any] | dict[str, Any] = Field(
        default_factory=lambda: ["1s", "5s", "30s", "2m", "10m", "30m"]
    )
    max_attempts: int = Field(default=10, ge=1)
    max_age: Duration = 86400.0
    jitter: float = Field(default=0.2, ge=0.0, le=1.0)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: list[Any] | dict[str, Any]) -> list[Any] | dict[str, Any]:
        if isinstance(value, list):
            if not value:
                raise ValueError("the retry schedule is empty: list waits like [1s, 10s, 1m]")
            for wait in value:
                parse_duration(wait)
        else:
            unknown = set(value) - {"first", "factor", "max"}
            if unknown or "first" not in value:
                raise ValueError(
                    "an exponential schedule is {first: 1s, factor: 2, max: 10m}"
                    + (f"; unknown keys: {', '.join(sorted(unknown))}" if unknown else "")
                )
            parse_duration(value["first"])
            parse_duration(value.get("max", "1h"))
            factor = value.get("factor", 2)
            if not isinstance(factor, int | float) or factor < 1:
                raise ValueError("factor must be a number of at least 1")
        return value

    def policy(self) -> RetryPolicy:
        if isinstance(self.schedule, list):
            waits = tuple(parse_duration(w) for w in self.schedule)
        else:
            waits = exponential(
                parse_duration(self.schedule["first"]),
                float(self.schedule.get("factor", 2)),
                parse_duration(self.schedule.get("max", "1h")),
            )
        return RetryPolicy(
            schedule=waits,
            max_attempts=self.max_attempts,
            max_age=self.max_age,
            jitter=self.jitter,
        )


class SourceSpec(Strict):
    system: str
    events: list[str] = Field(min_length=1)
    filter: dict[str, Any] = Field(default_factory=dict)
    """Route only events whose data has these values (`test: false`)."""


class TargetSpec(Strict):
    system: str
    operation: str
    options: dict[str, Any] = Field(default_factory=dict)


class MappingSection(Strict):
    fields: dict[str, Any] = Field(default_factory=dict)
    function: str | None = None


class OrderingSpec(Strict):
    key: str
    """Path in the event data; deliveries with the same key are applied in journal order."""
    after: str | None = None
    """Another flow with the same keys: a delivery also waits for that flow's open deliveries
    of its key received before it (a cancellation waits for its sale's creation)."""


class StaleSpec(Strict):
    version: str
    """Path in the event data to the source's `updated_at` or version number."""


class SlaSpec(Strict):
    deliver_within: Duration = 300.0


class FlowSpec(Strict):
    owner: str | None = None
    purpose: str = ""
    source: SourceSpec
    target: TargetSpec
    mapping: MappingSection = MappingSection()
    value_maps: dict[str, dict[str, Any]] = Field(default_factory=dict)
    ordering: OrderingSpec | None = None
    coalesce: bool = False
    """State flows: a newer pending value for a key supersedes older pending ones."""
    stale: StaleSpec | None = None
    retry: RetrySpec = RetrySpec()
    sla: SlaSpec = SlaSpec()
    alerts: AlertsSpec = AlertsSpec()

    @model_validator(mode="after")
    def _coalesce_needs_key(self) -> FlowSpec:
        if self.coalesce and self.ordering is None:
            raise ValueError("coalesce needs ordering.key: it supersedes values per key")
        return self

    @property
    def after(self) -> str | None:
        """The flow whose earlier open deliveries of a key this flow's also wait for."""
        return self.ordering.after if self.ordering is not None else None


# --- what the engine gets -----------------------------------------------------------------------


@dataclass(frozen=True)
class System:
    name: str
    spec: SystemSpec
    connector: Connector
    options: Any


@dataclass(frozen=True)
class Flow:
    name: str
    spec: FlowSpec
    mapping: CompiledMapping
    retry: RetryPolicy
    target_options: Any
    version: str
    """Content hash of the flow file (with the mapping function it names)."""


@dataclass(frozen=True)
class Project:
    dir: Path
    settings: HubSettings
    systems: dict[str, System]
    flows: dict[str, Flow]
    notifiers: dict[str, NotifierSpec] = field(default_factory=dict)
    """`notifiers:` in seamline.yaml: where alerts are sent, by name."""
    checks: dict[str, CheckSpec] = field(default_factory=dict)
    """`checks/NAME.yaml`: reconciliations between two systems."""
    externals: dict[str, ExternalSpec] = field(default_factory=dict)
    """`landscape/NAME.yaml`: integrations that run outside the hub, for the map."""

    def flows_for(self, system: str, event: str) -> list[Flow]:
        return [
            f
            for f in self.flows.values()
            if f.spec.source.system == system and event in f.spec.source.events
        ]


# --- loading ------------------------------------------------------------------------------------


@dataclass
class _Doc:
    """One YAML file: its data and the line of every key path in it."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line(self, path: Path_) -> int | None:
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _walk(value_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    constructor = yaml.SafeLoader("")
    return constructor.construct_object(node, deep=True)


def _read(path: Path, root: Path, problems: list[Problem]) -> _Doc | None:
    rel = str(path.relative_to(root))
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        problems.append(
            Problem(rel, mark.line + 1 if mark else None, f"not valid YAML: {exc.problem}")
        )
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(rel, None, f"cannot be read: {exc}"))
        return None
    doc = _Doc(rel, {})
    if node is None:
        return doc
    doc.data = _walk(node, (), doc.lines)
    if not isinstance(doc.data, dict):
        problems.append(Problem(rel, 1, "must be a mapping of keys to values"))
        return None
    return doc


def _validation_problems(doc: _Doc, exc: ValidationError, prefix: Path_ = ()) -> Iterator[Problem]:
    for err in exc.errors():
        loc: Path_ = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        loc = (*prefix, *loc)
        where = ".".join(str(p) for p in loc) or "(top)"
        if err["type"] == "extra_forbidden":
            parent = loc[:-1]
            yield Problem(
                doc.file,
                doc.line(loc),
                f"unknown key '{loc[-1]}'"
                + (f" in {'.'.join(map(str, parent))}" if parent else ""),
                "remove it or check its spelling",
            )
        elif err["type"] == "missing":
            yield Problem(doc.file, doc.line(loc[:-1]), f"{where} is required", "add it")
        else:
            message = err["msg"].removeprefix("Value error, ")
            yield Problem(doc.file, doc.line(loc), f"{where}: {message}")


MISSING_SECRET = "secret is missing"


def _resolve_secrets(
    value: Any, doc: _Doc, path: Path_, base: Path, problems: list[Problem]
) -> Any:
    """Replace every secret reference under `value` by a resolved `Secret`."""
    if is_secret_ref(value):
        try:
            return resolve_secret(value, base_dir=base)
        except SecretMissing as exc:
            problems.append(
                Problem(
                    doc.file,
                    doc.line(path),
                    f"{'.'.join(map(str, path))}: {MISSING_SECRET}: {exc}",
                    "set it before `seamline run`; secrets are never written in project files",
                )
            )
            return resolve_secret("${_}", base_dir=base, environ={"_": "unresolved"})
    if isinstance(value, dict):
        return {k: _resolve_secrets(v, doc, (*path, k), base, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_secrets(v, doc, (*path, i), base, problems) for i, v in enumerate(value)]
    return value


def _plain_outside_secrets(connection: Any, options: type[BaseModel]) -> Any:
    """`${VAR}` and `{file: ...}` also fill options that are not credentials (an address, a
    port, a shop's domain): there the value is plain text, since nothing needs hiding."""
    if not isinstance(connection, dict):
        return connection
    plain = dict(connection)
    for name, value in connection.items():
        field = options.model_fields.get(name)
        if isinstance(value, Secret) and field is not None and not _takes_secret(field.annotation):
            plain[name] = value.reveal()
    return plain


def _takes_secret(annotation: Any) -> bool:
    if annotation is Secret:
        return True
    return any(_takes_secret(arg) for arg in typing.get_args(annotation))


HUB_SYSTEM = "seamline"
"""Reserved: the system name of messages the hub makes itself (`engine.router.HUB`)."""


def _name_ok(path: Path, root: Path, problems: list[Problem]) -> bool:
    if _NAME.match(path.stem):
        return True
    problems.append(
        Problem(
            str(path.relative_to(root)),
            None,
            f"'{path.stem}' is not a valid name",
            "use lower-case letters, digits, '-' and '_' (it names the system or flow)",
        )
    )
    return False


@dataclass
class _Notifiers:
    specs: dict[str, NotifierSpec] = field(default_factory=dict)
    declared: set[str] = field(default_factory=set)
    """Every name under `notifiers:`, broken ones too (reported once, where they are)."""


def _load_settings(
    root: Path, problems: list[Problem], notifiers: _Notifiers | None = None
) -> HubSettings:
    path = root / "seamline.yaml"
    data: dict[str, Any] = {}
    doc = _read(path, root, problems) if path.exists() else None
    if doc is not None:
        data = dict(doc.data)
        _load_notifiers(doc, data.pop("notifiers", None), root, problems, notifiers or _Notifiers())
    data.update(environment_overrides())
    try:
        return HubSettings.model_validate(data)
    except ValidationError as exc:
        problems.extend(_validation_problems(doc or _Doc("seamline.yaml", {}), exc))
        return HubSettings()


def _load_notifiers(
    doc: _Doc, raw: Any, root: Path, problems: list[Problem], out: _Notifiers
) -> None:
    """`notifiers:` in seamline.yaml: name → kind and settings, secrets as references."""
    if raw is None:
        return
    if not isinstance(raw, dict):
        problems.append(
            Problem(
                doc.file,
                doc.line(("notifiers",)),
                "notifiers must map names to settings",
                "write each as a name with its kind and settings: ops: {kind: slack, url: ...}",
            )
        )
        return
    out.declared.update(str(name) for name in raw)
    for name, settings in raw.items():
        where: Path_ = ("notifiers", name)
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(
                Problem(
                    doc.file,
                    doc.line(where),
                    f"'{name}' is not a valid notifier name",
                    "use lower-case letters, digits, '-' and '_'",
                )
            )
            continue
        if not isinstance(settings, dict) or "kind" not in settings:
            problems.append(
                Problem(
                    doc.file,
                    doc.line(where),
                    f"notifiers.{name}.kind is required",
                    "kind is one of: webhook, slack, email",
                )
            )
            continue
        kind = NOTIFIER_KINDS.get(settings["kind"])
        if kind is None:
            problems.append(
                Problem(
                    doc.file,
                    doc.line((*where, "kind")),
                    f"unknown notifier kind '{settings['kind']}'",
                    f"kinds: {', '.join(NOTIFIER_KINDS)}",
                )
            )
            continue
        resolved = _resolve_secrets(settings, doc, where, root, problems)
        try:
            out.specs[name] = kind.model_validate(resolved)
        except ValidationError as exc:
            problems.extend(_validation_problems(doc, exc, where))


def _load_system(path: Path, root: Path, problems: list[Problem]) -> System | None:
    doc = _read(path, root, problems)
    if doc is None or not _name_ok(path, root, problems):
        return None
    if path.stem == HUB_SYSTEM:
        problems.append(
            Problem(
                str(path.relative_to(root)),
                None,
                f"'{HUB_SYSTEM}' is the name of the hub's own messages (heals)",
                "name the system after what it is: shop, erp, warehouse",
            )
        )
        return None
    try:
        spec = SystemSpec.model_validate(doc.data)
    except ValidationError as exc:
        problems.extend(_validation_problems(doc, exc))
        return None
    found = CONNECTORS.get(spec.kind)
    if found is None:
        problems.append(
            Problem(
                doc.file,
                doc.line(("kind",)),
                f"unknown kind '{spec.kind}'",
                f"known kinds: {', '.join(sorted(CONNECTORS))}",
            )
        )
        return None
    own = doc.data.get("budget") if isinstance(doc.data, dict) else None
    if found.default_budget:
        # What the vendor can take, unless the file says otherwise (key by key).
        given = own if isinstance(own, dict) else {}
        try:
            budget = BudgetSpec.model_validate({**found.default_budget, **given})
        except ValidationError as exc:
            problems.extend(_validation_problems(doc, exc, ("budget",)))
            return None
        spec = spec.model_copy(update={"budget": budget})
    connection = _resolve_secrets(spec.connection, doc, ("connection",), root, problems)
    connection = _plain_outside_secrets(connection, found.options)
    try:
        options = found.options.model_validate(connection)
    except ValidationError as exc:
        problems.extend(_validation_problems(doc, exc, ("connection",)))
        return None
    return System(path.stem, spec, found, options)


def _flow_version(path: Path, spec: FlowSpec, root: Path) -> str:
    digest = hashlib.sha256(path.read_bytes())
    if spec.mapping.function:
        file = root / spec.mapping.function.partition(":")[0]
        if file.is_file():
            digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def _mapping_problem_line(doc: _Doc, problem: Problem) -> Problem:
    """The mapping compiler names a dotted path; turn it into this file's line."""
    head = problem.message.split(":", 1)[0]
    parts: Path_ = tuple(head.split(".")) if head.startswith(("mapping.", "value_maps.")) else ()
    line = doc.line(parts) if parts else doc.line(("mapping",))
    return Problem(doc.file, line, problem.message, problem.fix)


def _section(data: Any, *keys: str) -> Any:
    """A value deep in raw YAML data, or None where the shape is not what a flow file has."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _declare_hint(name: str, systems: Mapping[str, System]) -> str:
    known = ", ".join(sorted(systems)) or "none yet"
    return f"add systems/{name}.yaml or use one of: {known}"


def _load_flow(
    path: Path,
    root: Path,
    systems: Mapping[str, System],
    problems: list[Problem],
    notifiers: Collection[str] | None = None,
) -> Flow | None:
    doc = _read(path, root, problems)
    if doc is None or not _name_ok(path, root, problems):
        return None
    found: list[Problem] = []
    spec: FlowSpec | None = None
    try:
        spec = FlowSpec.model_validate(doc.data)
    except ValidationError as exc:
        found.extend(_validation_problems(doc, exc))
    # Cross-checks read the raw data, so a schema error elsewhere in the file hides nothing.
    raw = doc.data
    source_name = _section(raw, "source", "system")
    events = _section(raw, "source", "events")
    target_name = _section(raw, "target", "system")
    operation_name = _section(raw, "target", "operation")
    fields = _section(raw, "mapping", "fields")
    function = _section(raw, "mapping", "function")
    value_maps = _section(raw, "value_maps")
    value_maps = value_maps if isinstance(value_maps, dict) else {}

    source = systems.get(source_name) if isinstance(source_name, str) else None
    if isinstance(source_name, str) and source is None:
        found.append(
            Problem(
                doc.file,
                doc.line(("source", "system")),
                f"source system '{source_name}' is not declared",
                _declare_hint(source_name, systems),
            )
        )
    if source is not None:
        declared = getattr(source.options, "events", None) or []
        for i, event in enumerate(events if isinstance(events, list) else []):
            if declared and event not in declared:
                found.append(
                    Problem(
                        doc.file,
                        doc.line(("source", "events", i)),
                        f"system '{source.name}' does not send '{event}'",
                        f"it sends: {', '.join(declared)}",
                    )
                )
        for problem, fix in source.connector.check(source.options, role="source"):
            found.append(
                Problem(
                    f"systems/{source.name}.yaml",
                    None,
                    f"flow '{path.stem}' receives from '{source.name}', {problem}",
                    fix,
                )
            )

    target_options: Any = None
    target = systems.get(target_name) if isinstance(target_name, str) else None
    if isinstance(target_name, str) and target is None:
        found.append(
            Problem(
                doc.file,
                doc.line(("target", "system")),
                f"target system '{target_name}' is not declared",
                _declare_hint(target_name, systems),
            )
        )
    if target is not None and isinstance(operation_name, str):
        operation = target.connector.operations.get(operation_name)
        if operation is None:
            found.append(
                Problem(
                    doc.file,
                    doc.line(("target", "operation")),
                    f"'{target.spec.kind}' systems have no operation '{operation_name}'",
                    f"operations: {', '.join(sorted(target.connector.operations))}",
                )
            )
        else:
            try:
                target_options = operation.model_validate(_section(raw, "target", "options") or {})
            except ValidationError as exc:
                found.extend(_validation_problems(doc, exc, ("target", "options")))
        for problem, fix in target.connector.check(target.options, role="target"):
            found.append(
                Problem(
                    f"systems/{target.name}.yaml",
                    None,
                    f"flow '{path.stem}' delivers to '{target.name}', {problem}",
                    fix,
                )
            )

    compiled: CompiledMapping | None = None
    try:
        compiled = compile_mapping(
            MappingSpec(
                fields=fields if isinstance(fields, dict) else {},
                function=function if isinstance(function, str) else None,
                value_maps=value_maps,
            ),
            project_dir=root,
            where=doc.file,
        )
    except ProjectError as exc:
        found.extend(_mapping_problem_line(doc, p) for p in exc.problems)

    if compiled is not None and source is not None:
        enumerations = source.connector.enumerations(source.options)
        for source_path, map_name in compiled.value_maps_used:
            values = enumerations.get(source_path)
            if values is None:
                continue
            missing = uncovered_values(value_maps.get(map_name, {}), values)
            if missing:
                found.append(
                    Problem(
                        doc.file,
                        doc.line(("value_maps", map_name)),
                        f"value map '{map_name}' does not cover {', '.join(map(repr, missing))}, "
                        f"which '{source.name}' can send at '{source_path}'",
                        f"add {'them' if len(missing) > 1 else 'it'} to value_maps.{map_name} "
                        "(or a '*' entry if one target value fits all the rest)",
                    )
                )

    notify = _section(raw, "alerts", "notify")
    for i, name in enumerate(notify if isinstance(notify, list) and notifiers is not None else []):
        if isinstance(name, str) and notifiers is not None and name not in notifiers:
            found.append(
                Problem(
                    doc.file,
                    doc.line(("alerts", "notify", i)),
                    f"notifier '{name}' is not declared",
                    "declare it under notifiers: in seamline.yaml; declared: "
                    + (", ".join(sorted(notifiers)) or "none yet"),
                )
            )

    problems.extend(found)
    if found or compiled is None or spec is None:
        return None
    return Flow(
        name=path.stem,
        spec=spec,
        mapping=compiled,
        retry=spec.retry.policy(),
        target_options=target_options,
        version=_flow_version(path, spec, root),
    )


def _ordering_problems(root: Path, flows: Mapping[str, Flow]) -> Iterator[Problem]:
    """`ordering.after` names another flow of this project that orders by a key too."""
    for name, flow in flows.items():
        after = flow.spec.after
        if after is None:
            continue
        other = flows.get(after)
        problem = None
        if after == name:
            problem = ("is the flow itself", "name another flow, or remove ordering.after")
        elif other is None:
            if any((root / "flows" / f"{after}{ext}").is_file() for ext in (".yaml", ".yml")):
                continue  # a flow whose own file is broken: reported there
            problem = ("is not a flow of this project", f"flows: {', '.join(sorted(flows))}")
        elif other.spec.ordering is None:
            problem = (
                "has no ordering.key, so its deliveries have no key to wait on",
                f"give flows/{after}.yaml an ordering.key with the same values",
            )
        if problem is not None:
            path = next((root / "flows").glob(f"{name}.y*ml"))
            doc = _read(path, root, [])
            yield Problem(
                str(path.relative_to(root)),
                doc.line(("ordering", "after")) if doc else None,
                f"ordering.after: '{after}' {problem[0]}",
                problem[1],
            )


def load_project(root: Path, *, secrets: bool = True) -> Project:
    """Load and validate a whole project; raise `ProjectError` with every problem found.

    `secrets=False`: a secret that is not set is no problem (a load run replaces every
    credential with the sandbox's own; the project's are never needed there)."""
    root = root.resolve()
    problems: list[Problem] = []
    if not root.is_dir():
        raise ProjectError([Problem(str(root), None, "is not a folder", "run `seamline init DIR`")])
    notifiers = _Notifiers()
    settings = _load_settings(root, problems, notifiers)
    systems: dict[str, System] = {}
    declared: set[str] = set()
    for path in sorted((root / "systems").glob("*.y*ml")):
        declared.add(path.stem)
        system = _load_system(path, root, problems)
        if system is not None:
            systems[system.name] = system
    flows: dict[str, Flow] = {}
    for path in sorted((root / "flows").glob("*.y*ml")):
        flow = _load_flow(path, root, systems, problems, notifiers.declared)
        if flow is not None:
            flows[flow.name] = flow
    problems.extend(_ordering_problems(root, flows))
    # A flow naming a system whose own file is broken is reported once, at that file.
    broken = declared - set(systems)
    problems = [
        p for p in problems if not any(f"system '{b}' is not declared" in p.message for b in broken)
    ]
    if not flows and not problems and not (root / "flows").is_dir():
        problems.append(
            Problem(
                str(root), None, "has no flows/ folder", "run `seamline init DIR` for an example"
            )
        )
    checks: dict[str, CheckSpec] = {}
    for path in sorted((root / "checks").glob("*.y*ml")):
        check = _load_check(path, root, systems, flows, problems, notifiers.declared)
        if check is not None:
            checks[path.stem] = check
    externals: dict[str, ExternalSpec] = {}
    for path in sorted((root / "landscape").glob("*.y*ml")):
        doc = _read(path, root, problems)
        if doc is None or not _name_ok(path, root, problems):
            continue
        try:
            externals[path.stem] = ExternalSpec.model_validate(doc.data)
        except ValidationError as exc:
            problems.extend(_validation_problems(doc, exc))
    if not secrets:
        problems = [p for p in problems if MISSING_SECRET not in p.message]
    if problems:
        raise ProjectError(problems)
    return Project(
        dir=root,
        settings=settings,
        systems=systems,
        flows=flows,
        notifiers=notifiers.specs,
        checks=checks,
        externals=externals,
    )


def _load_check(
    path: Path,
    root: Path,
    systems: Mapping[str, System],
    flows: Mapping[str, Flow],
    problems: list[Problem],
    notifiers: Collection[str],
) -> CheckSpec | None:
    doc = _read(path, root, problems)
    if doc is None or not _name_ok(path, root, problems):
        return None
    try:
        spec = CheckSpec.model_validate(doc.data)
    except ValidationError as exc:
        problems.extend(_validation_problems(doc, exc))
        return None
    found = len(problems)
    for side in ("left", "right"):
        name = getattr(spec, side).system
        system = systems.get(name)
        if system is None:
            problems.append(
                Problem(
                    doc.file,
                    doc.line((side, "system")),
                    f"{side} system '{name}' is not declared",
                    _declare_hint(name, systems),
                )
            )
            continue
        reader = system.connector.reader(name, system.options)
        entities = list(reader.entities) if reader is not None else []
        if spec.entity not in entities:
            problems.append(
                Problem(
                    doc.file,
                    doc.line(("entity",)),
                    f"system '{name}' ({system.spec.kind}) cannot list {spec.entity}",
                    f"it lists: {', '.join(entities) or 'nothing'}",
                )
            )
    known = ", ".join(sorted(notifiers)) or "none yet"
    for n, name in enumerate(spec.notify):
        if name not in notifiers:
            problems.append(
                Problem(
                    doc.file,
                    doc.line(("notify", n)),
                    f"notifier '{name}' is not declared",
                    f"declare it under notifiers: in seamline.yaml (declared: {known})",
                )
            )
    if spec.heal is not None:
        flow = flows.get(spec.heal.flow)
        if flow is None:
            problems.append(
                Problem(
                    doc.file,
                    doc.line(("heal", "flow")),
                    f"heal flow '{spec.heal.flow}' is not in flows/",
                    f"flows: {', '.join(sorted(flows)) or 'none'}",
                )
            )
        elif (flow.spec.source.system, flow.spec.target.system) != (
            spec.left.system,
            spec.right.system,
        ):
            problems.append(
                Problem(
                    doc.file,
                    doc.line(("heal", "flow")),
                    f"heal flow '{flow.name}' goes {flow.spec.source.system} -> "
                    f"{flow.spec.target.system}, not {spec.left.system} -> {spec.right.system}",
                    "a heal copies the left (true) value to the right: name the flow that does",
                )
            )
    return spec if len(problems) == found else None
