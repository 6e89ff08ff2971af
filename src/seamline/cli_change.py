"""`seamline apply` and `seamline rollback`: a flow change goes live, or back, on the hubs.

Registered on the `seamline` app by `cli.py`. Both ask every running hub process (through a
journal cursor they read every few seconds) to load the project from disk again: new messages
route with the new versions, deliveries in flight finish on the version they started with.
Changes to systems or `seamline.yaml` need a restart; the hub refuses them in an apply.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import orjson
import typer

from seamline.cli import ProjectDir, _open, _project, _run, app, err, out
from seamline.journal.base import ConsoleJournal
from seamline.settings import operator_name

WAIT = 30.0


@app.command()
def apply(
    directory: ProjectDir = None,
    wait: Annotated[bool, typer.Option(help="Wait until the hub runs the new versions")] = True,
) -> None:
    """Make the project on disk live on the running hubs (see `seamline plan` first)."""
    project = _project(directory)
    actor = operator_name()
    wanted = {name: flow.version for name, flow in project.flows.items()}

    async def go() -> int:
        journal = await _open(project)
        try:
            return await _apply(journal, wanted, actor, wait=wait)
        finally:
            await journal.close()

    raise typer.Exit(_run(go()))


@app.command()
def rollback(
    flow: Annotated[str, typer.Argument(help="The flow to take back")],
    directory: ProjectDir = None,
    to: Annotated[
        str | None, typer.Option(help="The version (default: the one live before the current)")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do it without asking")] = False,
) -> None:
    """Write a previous version of a flow back to disk (its files, kept by the hub) and apply it."""
    from seamline.change.version import restore

    project = _project(directory)
    actor = operator_name()

    async def go() -> int:
        journal = await _open(project)
        try:
            versions = [v["version"] for v in await journal.flow_versions(flow, limit=50)]
            target = to or (versions[1] if len(versions) > 1 else None)
            if target is None:
                err.print(f"flow '{flow}' has no earlier version kept (kept: {versions or 'none'})")
                return 2
            stored = await journal.flow_version_content(flow, target)
            if stored is None:
                err.print(f"no version {target} of flow '{flow}' (kept: {', '.join(versions)})")
                return 2
            written = restore(project.dir, stored)
            out.print(f"wrote {', '.join(written)} of {flow} version {target}")
            if not yes and not typer.confirm("apply it now?"):
                out.print("written, not applied: seamline apply when ready")
                return 0
            loaded = _project(project.dir)
            wanted = {n: f.version for n, f in loaded.flows.items()}
            return await _apply(journal, wanted, actor, wait=True)
        finally:
            await journal.close()

    raise typer.Exit(_run(go()))


async def _apply(journal: ConsoleJournal, wanted: dict[str, str], actor: str, *, wait: bool) -> int:
    asked = orjson.dumps({"at": time.time(), "by": actor, "versions": wanted}).decode()
    await journal.set_cursor("apply", asked)
    await journal.audit(actor=actor, action="apply", target="project", detail={"versions": wanted})
    out.print("asked the running hubs to load the project again")
    if not wait:
        return 0
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        live: dict[str, str] = {}
        for row in await journal.flow_versions(limit=10_000):
            live.setdefault(row["flow"], row["version"])
        if all(live.get(name) == version for name, version in wanted.items()):
            out.print("[green]live[/]: every flow runs the version on disk")
            return 0
        await asyncio.sleep(1.0)
    err.print(
        f"no hub took it within {WAIT:.0f} s: is one running (and leading)? It applies when it "
        "next reads the journal; a refusal is in its log"
    )
    return 1
