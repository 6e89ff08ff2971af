"""`seamline reconcile`, `landscape`, `test` and `plan`: checks, the map, and safe change.

Registered on the `seamline` app by `cli.py`; one module so `cli.py` stays about running.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich import box
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from seamline.cli import ProjectDir, _open, _project, _run, app, err, out
from seamline.errors import SeamlineError
from seamline.settings import operator_name

SHOWN = 20
"""Findings listed on the screen (all of them are in the journal and the console)."""


@app.command()
def reconcile(
    name: Annotated[str, typer.Argument(help="The check: checks/NAME.yaml")],
    directory: ProjectDir = None,
    heal: Annotated[
        bool, typer.Option(help="Heal what a value can settle, through the check's heal flow")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="With --heal: only show what would be sent")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Heal without asking")] = False,
) -> None:
    """Compare one entity set between two systems now, show the drift, and heal it.

    Exit status: 0 no drift, 3 drift found, 1 the check could not run."""
    from seamline.checks import heal as healing
    from seamline.checks.run import Progress as Read
    from seamline.checks.run import run_check
    from seamline.engine.router import offline_router

    project = _project(directory)
    if name not in project.checks:
        known = ", ".join(sorted(project.checks)) or "none"
        err.print(f"no check '{name}' in {project.dir / 'checks'} (checks: {known})")
        raise typer.Exit(2)
    spec = project.checks[name]
    actor = operator_name()

    async def go() -> int:
        journal = await _open(project)
        try:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[rows]}"),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            ) as bar:
                task = bar.add_task(f"{name}: reading", total=None, rows="")

                def shown(state: Read) -> None:
                    rows = f"{spec.left.system} {state.read['left']:,} · "
                    rows += f"{spec.right.system} {state.read['right']:,} rows"
                    bar.update(task, description=f"{name}: {state.phase}", rows=rows)

                try:
                    recorded = await run_check(project, name, journal, actor=actor, progress=shown)
                except SeamlineError as exc:
                    err.print(f"[red]{name} could not run:[/] {exc}", soft_wrap=True)
                    return 1
            outcome = recorded.outcome
            out.print(f"[bold]{name}[/] (run {recorded.run_id}): {outcome.summary()}")
            out.print(recorded.trend())
            if outcome.findings:
                table = Table(box=box.SIMPLE_HEAD, title=f"first {SHOWN} findings")
                table.add_column("finding")
                table.add_column("what")
                for finding in outcome.findings[:SHOWN]:
                    table.add_row(finding.kind.replace("_", " "), finding.describe())
                out.print(table)
            if heal and not outcome.clean:
                return await _heal(journal, project, name, recorded.run_id, outcome, actor)
            return 3 if not outcome.clean else 0
        finally:
            await journal.close()

    async def _heal(
        journal: Any, project: Any, check: str, run_id: int, outcome: Any, actor: str
    ) -> int:
        if spec.heal is None:
            err.print(f"check '{check}' names no heal flow (heal: {{flow: ...}} in its file)")
            return 3
        heals, left_out = await healing.prepare(
            spec,
            project.flows[spec.heal.flow],
            outcome.findings,
            journal=journal,
            router=offline_router(project),
        )
        out.print(f"heal through [bold]{spec.heal.flow}[/]: {len(heals)} to send")
        for item in heals[:SHOWN]:
            out.print(f"  {'/'.join(item.key)}: {item.data} ({item.why})", highlight=False)
        for skipped in left_out[:SHOWN]:
            out.print(f"  [yellow]not healed[/] {'/'.join(skipped.key)}: {skipped.why}")
        if dry_run or not heals:
            return 3
        if not yes and not typer.confirm(f"send {len(heals)} heals?"):
            return 3
        sent = await healing.apply(journal, heals, check=check, run=str(run_id), actor=actor)
        out.print(f"journaled {sent} heals; the hub delivers them (seamline status)")
        return 3

    raise typer.Exit(_run(go()))


@app.command()
def landscape(
    directory: ProjectDir = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the register as JSON here")
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Write the Markdown here (default: stdout)")
    ] = None,
) -> None:
    """Every system and integration (in the hub and outside it) with owner, SLA and risk."""
    from seamline.landscape import export, signals
    from seamline.landscape.register import build

    project = _project(directory)
    register = build(project, externals=project.externals, checks=project.checks)
    now = time.time()

    async def read() -> dict[str, Any]:
        journal = await _open(project)
        try:
            return await signals.read(journal, register, now=now)
        finally:
            await journal.close()

    found = _run(read()) if _has_journal(project) else {}
    risks = signals.risks(register, found, now=now)
    page = export.as_markdown(register, risks, title=project.settings.name)
    if markdown is not None:
        markdown.write_text(page)
        out.print(f"wrote {markdown}")
    else:
        out.print(page, markup=False, highlight=False, soft_wrap=True)
    if json_out is not None:
        json_out.write_bytes(
            orjson.dumps(export.as_json(register, risks), option=orjson.OPT_INDENT_2)
        )
        out.print(f"wrote {json_out}")


def _has_journal(project: Any) -> bool:
    """A journal to read signals from: PostgreSQL's, or the SQLite file the settings name
    (a project that never ran has none, and its signals are quiet)."""
    from seamline.journal.location import is_postgres

    settings = project.settings
    return is_postgres(settings.journal) or settings.journal_path(project.dir).exists()


@app.command("test")
def test_flows(directory: ProjectDir = None) -> None:
    """Run every flow case (tests/FLOW/NAME.input.json) offline; non-zero exit if one fails."""
    from seamline.change.case import run_all
    from seamline.engine.router import offline_router

    project = _project(directory)
    results = run_all(project, offline_router(project))
    if not results:
        out.print(f"no flow cases in {project.dir / 'tests'} (tests/FLOW/NAME.input.json)")
        return
    failed = [r for r in results if not r.passed]
    for r in results:
        mark = "[green]ok[/]  " if r.passed else "[red]FAIL[/]"
        out.print(f"{mark} {r.flow}/{r.name}")
        if not r.passed:
            out.print(r.detail, markup=False, highlight=False, soft_wrap=True)
    out.print(f"{len(results) - len(failed)} of {len(results)} cases pass")
    if failed:
        raise typer.Exit(1)


@app.command()
def plan(
    directory: ProjectDir = None,
    recent: Annotated[
        int, typer.Option(help="Recent messages to rehearse each changed flow with")
    ] = 500,
) -> None:
    """What applying the project on disk would change, shown on recent real traffic.

    Compares each flow on disk with the version that last went live (the hub keeps every
    version's files in the journal) and sends the flow's recent messages through both,
    offline: nothing is sent anywhere."""
    from seamline.change.plan import rehearse
    from seamline.change.version import with_files
    from seamline.engine.router import offline_router

    project = _project(directory)
    router = offline_router(project)

    async def go() -> None:
        journal = await _open(project)
        try:
            live: dict[str, str] = {}
            for row in await journal.flow_versions(limit=10_000):
                live.setdefault(row["flow"], row["version"])  # newest first
            changed = [n for n, f in sorted(project.flows.items()) if live.get(n) != f.version]
            gone = sorted(set(live) - set(project.flows))
            if not changed and not gone:
                out.print("nothing to apply: every flow on disk is the version live")
                return
            for name in gone:
                out.print(f"- flow {name}: live, not on disk (it would stop)")
            for name in changed:
                flow = project.flows[name]
                was = live.get(name)
                out.print(f"~ flow {name}: {was or '(new)'} -> {flow.version}")
                before = None
                if was is not None:
                    stored = await journal.flow_version_content(name, was)
                    if stored is not None:
                        with tempfile.TemporaryDirectory() as tmp:
                            old = with_files(project, stored, Path(tmp) / "live")
                            before = (old.flows[name], offline_router(old))
                messages = await journal.recent_messages(flow.spec.source.system, limit=recent)
                result = rehearse(name, before, (flow, router), messages)
                for line in result.summary():
                    out.print(f"  {line}", highlight=False)
        finally:
            await journal.close()

    _run(go())
