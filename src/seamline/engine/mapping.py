"""The mapping of a flow: a decoded source event in, the target's request body out.

`compile_mapping` reads the flow's `mapping` and `value_maps` sections once, reports every
problem in them together, and returns a `Mapping` made of closures; `Mapping.apply` runs per
delivery and never looks at the YAML again.

A field rule is a source path (`order.number`, `line_items.0.sku`) or a dict of these keys:

```
from      source path              type      str | int | float | decimal | bool
default   used if absent or null   optional  absent or null -> field omitted
value     a constant               map       name of a value map (lookup, then `type`)
each      source path to a list    fields    rules relative to each item (with `each` only)
```

Output keys may be dotted (`customer.email` builds `{"customer": {"email": ...}}`); a nested
object whose fields are all omitted is omitted too. Values are not copied: an unconverted
source value in the output is the event's own object.

Data that breaks the rules raises ContractError naming the output field and the source path.
A value map looks a value up as str() (booleans as `true`/`false`); a value it lacks is an
error unless it has a `"*"` entry, and a `default` fills an absent value, never an unmapped one.
`decimal` is a string in plain notation keeping the source's scale ("12.50" stays "12.50");
`int` refuses fractions; `bool` takes true/false/yes/no/1/0; a boolean is not a number.

`function: FILE.py:NAME` is imported once, at compile time, and called after the field rules as
`NAME(event, mapped) -> dict` (`mapped` is `{}` without fields); what it raises comes out as is.
Without fields or function the mapping is the identity.
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib.util
import inspect
import itertools
import math
import re
import sys
from collections import abc
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, TypeAlias

from seamline.errors import ContractError, Problem, ProjectError

__all__ = ["Mapping", "MappingSpec", "compile_mapping", "read_path", "uncovered_values"]

RULE_KEYS: Final = ("from", "type", "default", "value", "map", "optional", "each", "fields")
TYPES: Final = ("str", "int", "float", "decimal", "bool")
CATCH_ALL: Final = "*"

# A decimal this far from 1 would print as a huge string: refuse it rather than build it.
_MAX_EXPONENT: Final = 64
# Numbers already written the way the slow path would write them (fast paths, same results).
_PLAIN_DECIMAL: Final = re.compile(r"-?(?:0|[1-9][0-9]{0,63})(?:\.[0-9]{1,64})?")
_PLAIN_LIMIT: Final = 10**64

_Object: TypeAlias = dict[str, Any]
_Getter: TypeAlias = abc.Callable[[Any], Any]
_Producer: TypeAlias = abc.Callable[[Any], Any]
_Builder: TypeAlias = abc.Callable[[Any], dict[str, Any]]
_Tree: TypeAlias = "dict[str, _Producer | _Tree]"
_Step: TypeAlias = tuple[str, int | None]

_OMIT: Final = object()
"""Returned by a producer whose field is left out of the output."""

_NO_CATCH_ALL: Final = object()
_modules = itertools.count(1)


@dataclass(frozen=True)
class MappingSpec:
    """The `mapping` section of a flow file (fields, function) and its `value_maps`."""

    fields: dict[str, Any] = field(default_factory=dict)
    function: str | None = None
    value_maps: dict[str, dict[str, Any]] = field(default_factory=dict)


class Mapping:
    """A compiled mapping. `apply` raises ContractError for data that breaks the mapping,
    and lets a mapping function's Skip or any other exception through unchanged.

    `value_maps_used` lists (source path, value map name) for every value-mapped field;
    paths inside `each` read `line_items[].status`.
    """

    __slots__ = ("_apply", "value_maps_used")

    def __init__(
        self, apply: abc.Callable[[_Object], _Object], value_maps_used: list[tuple[str, str]]
    ) -> None:
        self._apply = apply
        self.value_maps_used = value_maps_used

    def apply(self, event: _Object) -> _Object:
        """The target's request body for `event` (the event itself for an identity mapping)."""
        return self._apply(event)

    @property
    def identity(self) -> bool:
        """No fields and no function: the body is the event's data as it came."""
        return self._apply is _identity


def compile_mapping(spec: MappingSpec, *, project_dir: Path, where: str = "mapping") -> Mapping:
    """Compile `spec`, or raise ProjectError with every problem found (file `where`).

    Each problem's message starts with the dotted path it is about, such as
    `mapping.fields.lines.fields.qty: ...`, so that the caller can find its line.
    """
    compiler = _Compiler(where, spec.value_maps)
    fields = spec.fields
    build: _Builder | None = None
    if not isinstance(fields, dict):
        compiler.problem("mapping.fields", "must map output fields to rules")
    elif fields:
        build = compiler.object(fields, at="mapping.fields", source="", output="")
    function = None
    if spec.function is not None:
        function = _load_function(spec.function, project_dir, compiler)
    if compiler.problems:
        # Two fields sharing a value map find its faults twice; say each once.
        raise ProjectError(list(dict.fromkeys(compiler.problems)))
    return Mapping(_applier(build, function, spec.function or ""), compiler.used)


def uncovered_values(value_map: dict[str, Any], enumeration: abc.Iterable[str]) -> list[str]:
    """The values of a source enumeration that `value_map` does not map, in enumeration order.

    A `"*"` entry covers every value.
    """
    keys = {_map_key(key) for key in value_map}
    if CATCH_ALL in keys:
        return []
    missing: list[str] = []
    for value in enumeration:
        if _map_key(value) not in keys and value not in missing:
            missing.append(value)
    return missing


def read_path(data: Any, path: str) -> Any:
    """The value at a source path (`order.number`, `line_items.0.sku`), or None when the
    path is absent or null; the same reading the field rules do.
    """
    return _walk(data, _steps(path))


def first_field(path: str) -> str:
    """The top-level field a source path starts at (`order` of `order.number`): read_path of
    the path reads the same in data holding only that field."""
    return path.split(".", 1)[0]


@functools.lru_cache(maxsize=1024)
def _steps(path: str) -> tuple[_Step, ...]:
    return tuple((part, int(part) if _is_index(part) else None) for part in path.split("."))


def _applier(
    build: _Builder | None, function: abc.Callable[..., Any] | None, ref: str
) -> abc.Callable[[_Object], _Object]:
    if function is None:
        if build is None:
            return _identity
        return build

    def apply(event: _Object) -> _Object:
        result = function(event, build(event) if build is not None else {})
        if not isinstance(result, dict):
            raise TypeError(f"mapping function {ref} returned {_kind(result)}, not a dict")
        return result

    return apply


def _identity(event: _Object) -> _Object:
    return event


class _Compiler:
    """Turns rules into closures, collecting problems instead of stopping at the first."""

    def __init__(self, where: str, value_maps: dict[str, dict[str, Any]]) -> None:
        self.where = where
        self.problems: list[Problem] = []
        self.used: list[tuple[str, str]] = []
        self.maps = self._value_maps(value_maps)

    def problem(self, at: str, message: str, fix: str = "") -> None:
        self.problems.append(Problem(self.where, None, f"{at}: {message}", fix))

    def _value_maps(self, value_maps: Any) -> dict[str, dict[str, Any]]:
        if not isinstance(value_maps, dict):
            self.problem("value_maps", "must map value map names to {source value: target value}")
            return {}
        tables: dict[str, dict[str, Any]] = {}
        for name, entries in value_maps.items():
            at = f"value_maps.{name}"
            if not isinstance(entries, dict):
                self.problem(at, "must map source values to target values")
                continue
            table: dict[str, Any] = {}
            for key, value in entries.items():
                normal = _map_key(key)
                if normal in table:
                    self.problem(f"{at}.{normal}", f"'{normal}' is mapped twice")
                if isinstance(value, dict | list):
                    self.problem(f"{at}.{normal}", f"maps to {_kind(value)}; use a single value")
                table[normal] = value
            tables[str(name)] = table
        return tables

    def object(self, fields: dict[Any, Any], *, at: str, source: str, output: str) -> _Builder:
        """A builder for `fields`; `source` and `output` prefix labels inside `each`."""
        tree: _Tree = {}
        for key, rule in fields.items():
            here = f"{at}.{key}"
            parts = key.split(".") if isinstance(key, str) else []
            if not parts or not all(parts):
                self.problem(here, f"output field {key!r} must be a name, or names joined by '.'")
                continue
            produce = self.rule(rule, at=here, source=source, label=output + key)
            if produce is not None:
                self._place(tree, parts, produce, at=here)
        return _builder(tree)

    def _place(self, tree: _Tree, parts: list[str], produce: _Producer, *, at: str) -> None:
        node = tree
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                taken = ".".join(parts[: depth + 1])
                self.problem(at, f"'{taken}' is a field of its own, so it cannot hold fields")
                return
            node = child
        if parts[-1] in node:
            self.problem(at, f"'{'.'.join(parts)}' already holds fields, so it cannot be one")
            return
        node[parts[-1]] = produce

    def rule(self, rule: Any, *, at: str, source: str, label: str) -> _Producer | None:
        short = isinstance(rule, str)
        if short:
            rule = {"from": rule}
        elif not isinstance(rule, dict):
            self.problem(at, f"expected a source path or a rule, not {_kind(rule)}")
            return None
        before = len(self.problems)
        for key in rule:
            if key not in RULE_KEYS:
                near = difflib.get_close_matches(str(key), RULE_KEYS, n=1)
                self.problem(
                    at,
                    f"unknown key '{key}' (expected one of: {', '.join(RULE_KEYS)})",
                    f"did you mean '{near[0]}'?" if near else "",
                )
        optional = rule.get("optional", False)
        if not isinstance(optional, bool):
            self.problem(f"{at}.optional", f"must be true or false, not {optional!r}")
        if "each" in rule:
            produce = self._each(rule, at=at, source=source, label=label)
        elif "fields" in rule:
            self.problem(
                at,
                "'fields' needs 'each'",
                "map a list with 'each', or build an object with dotted keys like 'customer.email'",
            )
            return None
        elif "value" in rule:
            produce = self._value(rule, at=at)
        elif "from" in rule:
            at_from = at if short else f"{at}.from"
            produce = self._source(rule, at=at, at_from=at_from, source=source, label=label)
        else:
            self.problem(at, "needs 'from', 'value' or 'each'")
            return None
        return produce if len(self.problems) == before else None

    def _value(self, rule: dict[str, Any], *, at: str) -> _Producer | None:
        if "from" in rule:
            self.problem(
                at, "has both 'value' and 'from'", "a field is a constant or read, not both"
            )
        others = sorted(set(rule) & {"type", "default", "map", "optional"})
        if others:
            self.problem(at, f"'value' is a constant and takes no {', '.join(others)}")
        return _constant(rule["value"])

    def _each(self, rule: dict[str, Any], *, at: str, source: str, label: str) -> _Producer | None:
        others = sorted(
            set(rule) & {"from", "type", "default", "value", "map"}, key=RULE_KEYS.index
        )
        if others:
            self.problem(at, f"'each' takes only 'fields' and 'optional', not {', '.join(others)}")
        steps = self._path(rule["each"], at=f"{at}.each")
        fields = rule.get("fields")
        if not isinstance(fields, dict) or not fields:
            self.problem(at, "'each' needs 'fields': the rules for each item")
        if steps is None or not isinstance(fields, dict) or not fields:
            return None
        path = f"{source}{rule['each']}"
        build = self.object(fields, at=f"{at}.fields", source=f"{path}[].", output=f"{label}[].")
        return _each(
            _getter(steps),
            build,
            absent=_absent(rule, steps, label=label, source=source, converted=None),
            label=label,
            path=path,
        )

    def _source(
        self, rule: dict[str, Any], *, at: str, at_from: str, source: str, label: str
    ) -> _Producer | None:
        steps = self._path(rule["from"], at=at_from)
        type_name = rule.get("type")
        convert: abc.Callable[[Any], Any] | None = None
        if type_name is not None:
            convert = _CONVERTERS.get(type_name) if isinstance(type_name, str) else None
            if convert is None:
                self.problem(
                    f"{at}.type",
                    f"unknown type {type_name!r} (expected one of: {', '.join(TYPES)})",
                )
        default: Any = None
        if "default" in rule and rule["default"] is not None and convert is not None:
            try:
                default = convert(rule["default"])
            except ValueError:
                self.problem(
                    f"{at}.default", f"{rule['default']!r} cannot be converted to {type_name}"
                )
        table: dict[str, Any] | None = None
        name = rule.get("map")
        if "map" in rule:
            table = self._table(name, at=f"{at}.map", convert=convert, type_name=type_name)
        if steps is None or (type_name is not None and convert is None):
            return None
        path = f"{source}{rule['from']}"
        if table is not None:
            self.used.append((path, str(name)))
        absent = _absent(rule, steps, label=label, source=source, converted=default)
        get = _getter(steps)
        if table is not None:
            return _lookup(get, absent, table, label=label, path=path, name=str(name))
        if convert is not None:
            return _typed(get, absent, convert, label=label, path=path, type_name=str(type_name))
        return _plain(get, absent)

    def _table(
        self,
        name: Any,
        *,
        at: str,
        convert: abc.Callable[[Any], Any] | None,
        type_name: Any,
    ) -> dict[str, Any] | None:
        table = self.maps.get(name) if isinstance(name, str) else None
        if table is None:
            near = difflib.get_close_matches(str(name), self.maps, n=1)
            known = ", ".join(sorted(self.maps)) or "none yet"
            self.problem(
                at,
                f"value map {name!r} does not exist",
                f"did you mean '{near[0]}'?"
                if near
                else f"add it under value_maps (known: {known})",
            )
            return None
        if convert is None:
            return table
        typed: dict[str, Any] = {}
        for key, value in table.items():
            try:
                typed[key] = None if value is None else convert(value)
            except ValueError:
                self.problem(
                    f"value_maps.{name}.{key}", f"{value!r} cannot be converted to {type_name}"
                )
        return typed

    def _path(self, path: Any, *, at: str) -> tuple[_Step, ...] | None:
        parts = path.split(".") if isinstance(path, str) else []
        if not parts or not all(parts):
            self.problem(at, f"source path {path!r} must be keys (or list indices) joined by '.'")
            return None
        if any(part.endswith("[]") for part in parts):
            self.problem(at, f"source path {path!r} has '[]'", "map a list's items with 'each'")
            return None
        return _steps(path)


# --- the closures that run per delivery ---------------------------------------------------------


def _builder(tree: _Tree) -> _Builder:
    items = tuple(
        (key, node if not isinstance(node, dict) else _nested(_builder(node)))
        for key, node in tree.items()
    )

    def build(source: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, produce in items:
            value = produce(source)
            if value is not _OMIT:
                out[key] = value
        return out

    return build


def _nested(build: _Builder) -> _Producer:
    def produce(source: Any) -> Any:
        return build(source) or _OMIT

    return produce


def _getter(steps: tuple[_Step, ...]) -> _Getter:
    """Reads a path; None when the path is absent or null (`_explain` tells which)."""
    if len(steps) == 1:
        key = steps[0][0]

        def get_key(source: Any) -> Any:
            if source.__class__ is dict:
                return source.get(key)
            return _walk(source, steps)

        return get_key

    def get_path(source: Any) -> Any:
        return _walk(source, steps)

    return get_path


def _walk(source: Any, steps: tuple[_Step, ...]) -> Any:
    current = source
    for key, index in steps:
        if isinstance(current, dict):
            current = current.get(key)
        elif index is not None and isinstance(current, list) and index < len(current):
            current = current[index]
        else:
            return None
        if current is None:
            return None
    return current


def _plain(get: _Getter, absent: _Producer) -> _Producer:
    def produce(source: Any) -> Any:
        value = get(source)
        return absent(source) if value is None else value

    return produce


def _typed(
    get: _Getter,
    absent: _Producer,
    convert: abc.Callable[[Any], Any],
    *,
    label: str,
    path: str,
    type_name: str,
) -> _Producer:
    def produce(source: Any) -> Any:
        value = get(source)
        if value is None:
            return absent(source)
        try:
            return convert(value)
        except ValueError:
            raise ContractError(
                f"field '{label}': cannot convert {_show(value)} at '{path}' to {type_name}"
            ) from None

    return produce


def _lookup(
    get: _Getter, absent: _Producer, table: dict[str, Any], *, label: str, path: str, name: str
) -> _Producer:
    catch_all = table.get(CATCH_ALL, _NO_CATCH_ALL)
    known = ", ".join(sorted(key for key in table if key != CATCH_ALL))

    def produce(source: Any) -> Any:
        value = get(source)
        if value is None:
            return absent(source)
        if value.__class__ is str:
            key = value
        elif isinstance(value, dict | list):
            raise ContractError(
                f"field '{label}': value map '{name}' needs a single value at '{path}', "
                f"found {_kind(value)}"
            )
        else:
            key = _map_key(value)
        hit = table.get(key, _NO_CATCH_ALL)
        if hit is not _NO_CATCH_ALL:
            return hit
        if catch_all is not _NO_CATCH_ALL:
            return catch_all
        raise ContractError(
            f"field '{label}': value '{key}' at '{path}' is not in value map '{name}' "
            f"(known: {known}); add it to value_maps.{name} in the flow file"
        )

    return produce


def _each(get: _Getter, build: _Builder, *, absent: _Producer, label: str, path: str) -> _Producer:
    def produce(source: Any) -> Any:
        items = get(source)
        if items is None:
            return absent(source)
        if not isinstance(items, list):
            raise ContractError(f"field '{label}': '{path}' is {_kind(items)}, not a list")
        out: list[dict[str, Any]] = []
        index = 0
        try:
            for index, item in enumerate(items):  # noqa: B007 - the index names the bad item
                out.append(build(item))
        except ContractError as exc:
            raise ContractError(f"{exc} (item {index} of '{path}')") from exc
        return out

    return produce


def _constant(value: Any) -> _Producer:
    if isinstance(value, dict | list):

        def fresh(source: Any) -> Any:
            return copy.deepcopy(value)

        return fresh

    def same(source: Any) -> Any:
        return value

    return same


def _absent(
    rule: dict[str, Any], steps: tuple[_Step, ...], *, label: str, source: str, converted: Any
) -> _Producer:
    """What a field is when its path is absent or null: default, omitted, or an error."""
    if "default" in rule:
        default = converted if converted is not None else rule["default"]
        return _constant(default)
    if rule.get("optional", False):
        return lambda _: _OMIT

    def missing(event: Any) -> Any:
        raise ContractError(f"field '{label}': {_explain(event, steps, source)}")

    return missing


def _explain(source: Any, steps: tuple[_Step, ...], prefix: str) -> str:
    """Why `steps` found nothing in `source`; only runs on the way to an error."""
    current = source
    for depth, (key, index) in enumerate(steps):
        here = prefix + ".".join(part for part, _ in steps[: depth + 1])
        parent = (prefix + ".".join(part for part, _ in steps[:depth])).rstrip(".")
        parent = parent or "the top level"
        full = prefix + ".".join(part for part, _ in steps)
        if isinstance(current, dict):
            if key not in current:
                return f"source has no '{full}'"
            current = current[key]
        elif index is not None and isinstance(current, list):
            if index >= len(current):
                return f"source has no '{full}' ('{parent}' has {len(current)} items)"
            current = current[index]
        else:
            return f"source has {_kind(current)} at '{parent}', so no '{full}'"
        if current is None:
            return f"source has null at '{here}'"
    return f"source has nothing at '{prefix}{'.'.join(part for part, _ in steps)}'"


# --- type conversion: ValueError means "not this type" ------------------------------------------


def _to_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float | Decimal):
        return str(value)
    raise ValueError(value)


def _to_int(value: Any) -> int:
    cls = value.__class__
    if cls is int:
        return value  # type: ignore[no-any-return] # checked just above: an int
    if cls is str and len(value) <= _MAX_EXPONENT and value.isascii() and value.isdigit():
        return int(value)
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str | Decimal):
        number = _to_decimal_value(value)
        if number == number.to_integral_value():
            return int(number)
    raise ValueError(value)


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    if (isinstance(value, str) and "_" in value) or not isinstance(
        value, str | int | float | Decimal
    ):
        raise ValueError(value)
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _to_decimal(value: Any) -> str:
    """Plain notation keeping the source's scale: "12.50" stays "12.50", 1e2 becomes "100"."""
    if value.__class__ is str:
        if _PLAIN_DECIMAL.fullmatch(value):
            return str(value)
    elif value.__class__ is float:
        text = repr(value)
        if _PLAIN_DECIMAL.fullmatch(text):
            return text
    elif value.__class__ is int and -_PLAIN_LIMIT < value < _PLAIN_LIMIT:
        return str(value)
    return format(_to_decimal_value(value), "f")


def _to_decimal_value(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(value)
    try:
        if isinstance(value, int | Decimal):
            number = Decimal(value)
        elif isinstance(value, float):
            number = Decimal(repr(value))  # the float as written, not its binary expansion
        elif isinstance(value, str) and "_" not in value:
            number = Decimal(value.strip())
        else:
            raise ValueError(value)
    except InvalidOperation:
        raise ValueError(value) from None
    if not number.is_finite() or abs(number.adjusted()) > _MAX_EXPONENT:
        raise ValueError(value)
    if len(number.as_tuple().digits) > 2 * _MAX_EXPONENT:
        raise ValueError(value)
    return number


_TRUE: Final = frozenset({"true", "yes", "1"})
_FALSE: Final = frozenset({"false", "no", "0"})


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise ValueError(value)


_CONVERTERS: Final[dict[str, abc.Callable[[Any], Any]]] = {
    "str": _to_str,
    "int": _to_int,
    "float": _to_float,
    "decimal": _to_decimal,
    "bool": _to_bool,
}


# --- helpers ------------------------------------------------------------------------------------


def _map_key(value: Any) -> str:
    """A value as a value map looks it up: str(), with booleans and null as YAML writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _is_index(part: str) -> bool:
    return part.isascii() and part.isdigit()


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _load_function(
    ref: str, project_dir: Path, compiler: _Compiler
) -> abc.Callable[..., Any] | None:
    """Import `FILE.py:NAME` from the project once; report what stops it as a problem."""
    at = "mapping.function"
    file_part, _, name = ref.rpartition(":")
    if not file_part or not name.isidentifier():
        compiler.problem(
            at, f"{ref!r} is not FILE.py:FUNCTION", "e.g. mappings/orders.py:transform"
        )
        return None
    file = project_dir / file_part
    if not file.is_file():
        compiler.problem(
            at, f"file '{file_part}' not found in the project", "create it or fix the path"
        )
        return None
    stem = re.sub(r"\W", "_", file.stem)
    module_name = f"seamline_mapping_{next(_modules)}_{stem}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        compiler.problem(at, f"'{file_part}' cannot be imported as Python")
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickle look modules up here
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        compiler.problem(at, f"importing '{file_part}' failed: {type(exc).__name__}: {exc}")
        return None
    function: object = getattr(module, name, None)
    if not callable(function):
        defined = sorted(
            key
            for key, value in vars(module).items()
            if inspect.isfunction(value) and value.__module__ == module_name
        )
        compiler.problem(
            at,
            f"'{file_part}' has no function '{name}'",
            f"it defines: {', '.join(defined)}" if defined else "define it there",
        )
        return None
    try:
        inspect.signature(function).bind({}, {})
    except TypeError:
        compiler.problem(at, f"'{name}' must take two arguments: (event, mapped)")
        return None
    except ValueError:  # no signature to inspect (a builtin): trust it
        pass
    return function
