"""The files that make a flow version: the flow file and the mapping code it names.

`project.py` names a version by the hash of these files; the hub keeps the files of every
version that goes live (`flow_version` in the journal), so a change can be compared with
what runs and rolled back to.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import orjson

from seamline.project import Flow, Project, load_project


def files(project: Project, flow: Flow) -> dict[str, str]:
    """Relative path -> text of the files behind `flow`'s version."""
    found = {f"flows/{flow.name}.yaml": (project.dir / "flows" / f"{flow.name}.yaml").read_text()}
    if flow.spec.mapping.function:
        module = flow.spec.mapping.function.partition(":")[0]
        path = project.dir / module
        if path.is_file():
            found[module] = path.read_text()
    return found


def live(project: Project) -> Iterator[tuple[str, str, bytes]]:
    """(flow, version, files as JSON) of every flow of the project."""
    for name, flow in sorted(project.flows.items()):
        yield name, flow.version, orjson.dumps(files(project, flow), option=orjson.OPT_SORT_KEYS)


def with_files(project: Project, stored: bytes, into: Path) -> Project:
    """The project as it was with a flow's stored files: a copy in `into` (without the
    journal) with those files written back, loaded (secrets from the environment, as now)."""
    shutil.copytree(project.dir, into, ignore=shutil.ignore_patterns("journal.db*"))
    restore(into, stored)
    return load_project(into)


def restore(root: Path, stored: bytes) -> list[str]:
    """Write a kept version's files back into the project at `root`; the paths written."""
    written = []
    for relative, text in orjson.loads(stored).items():
        target = (root / relative).resolve()
        if root.resolve() not in target.parents:
            raise ValueError(f"a stored flow file lies outside the project: {relative}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(relative)
    return written
