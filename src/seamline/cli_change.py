"""`seamline apply`, `rollback`, `load` and `chaos`: a change goes live (or back), and the
project is tried at peak volume and under faults against the sandbox simulators.

Registered on the `seamline` app by `cli.py`. Both ask every running hub process (through a
journal cursor they read every few seconds) to load the project from disk again: new messages
route with the new versions, deliveries in flight finish on the version they started with.
Changes to systems or `seamline.yaml` need a restart; the hub refuses them in an apply.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from seamline.cli import ProjectDir, _open, _project, _run, app, err, out
from seamline.journal.base import ConsoleJournal
from seamline.project import Project
from seamline.settings import operator_name

if TYPE_CHECKING:
    from seamline.sandbox.load.recording import Recording

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


Duration = Annotated[str, typer.Option(help="seconds, or 30s, 2m, 1h")]
Rate = Annotated[float, typer.Option(help="Shop orders per second")]
CancelEvery = Annotated[int, typer.Option(help="Cancel every n-th order (0: none)")]
HubMode = Annotated[str | None, typer.Option(help="inline or process (kill-hub needs process)")]
Keep = Annotated[Path | None, typer.Option(help="Keep the run's project copy here")]
Seed = Annotated[int, typer.Option(help="The simulators' seed")]
JsonOut = Annotated[Path | None, typer.Option("--json", help="Write the report here")]
Replay = Annotated[
    str | None,
    typer.Option(
        help="Play the real traffic the project's journal received in this window instead "
        "of generated orders (2h: the last two hours)"
    ),
]
ReplayUntil = Annotated[
    str | None,
    typer.Option(help="The window ends here (ISO time, e.g. 2026-11-28T18:00Z; default: now)"),
]
Speed = Annotated[float, typer.Option(help="With --replay: how many times faster than recorded")]


def _load(
    directory: Path | None,
    *,
    chaos: list[str],
    rate: float,
    duration: str,
    drain: str,
    cancel_every: int,
    hub: str | None,
    keep: Path | None,
    seed: int,
    json_out: Path | None,
    replay: str | None = None,
    replay_until: str | None = None,
    speed: float = 10.0,
) -> int:
    from seamline.errors import SeamlineError
    from seamline.observe import log as logs
    from seamline.sandbox.load.runner import run_load
    from seamline.settings import parse_duration

    project = _project(directory, secrets=False)  # the run's credentials are its own
    logs.configure("error")  # the live view is the output; an inline hub's lines would clutter it
    if hub not in (None, "inline", "process"):
        err.print(f"--hub is inline or process, not {hub!r}")
        return 2
    try:
        recording = (
            None if replay is None else asyncio.run(_recording(project, replay, replay_until))
        )
        report = run_load(
            project.dir,
            rate=rate,
            duration=parse_duration(duration),
            drain=parse_duration(drain),
            chaos=chaos,
            console=out,
            keep=keep,
            hub=hub,  # type: ignore[arg-type]
            cancel_every=cancel_every,
            seed=seed,
            recording=recording,
            speed=speed,
        )
    except (SeamlineError, ValueError) as exc:
        err.print(f"[red]cannot run:[/] {exc}", soft_wrap=True)
        return 2
    if json_out is not None:
        json_out.write_bytes(orjson.dumps(report.as_json(), option=orjson.OPT_INDENT_2))
    return 0 if report.held and not report.parked else 1


async def _recording(project: Project, window: str, until: str | None) -> Recording:
    """The slice of real traffic the project's journal holds from its flows' sources."""
    from datetime import datetime

    from seamline.errors import SeamlineError
    from seamline.journal.location import is_postgres
    from seamline.sandbox.load.recording import read_recording
    from seamline.settings import parse_duration

    try:
        end = time.time() if until is None else datetime.fromisoformat(until).timestamp()
    except ValueError:
        raise SeamlineError(
            f"--replay-until is a time such as 2026-11-28T18:00Z, not {until!r}"
        ) from None
    sources = {f.spec.source.system for f in project.flows.values()}
    systems = {name: project.systems[name].spec.kind for name in sorted(sources)}
    fields = {
        name: str(getattr(project.systems[name].options, "event_field", "type"))
        for name, kind in systems.items()
        if kind == "http"
    }
    settings = project.settings
    if not is_postgres(settings.journal) and not settings.journal_path(project.dir).exists():
        raise SeamlineError(
            f"{project.dir.name} has no journal at {settings.journal_path(project.dir)}: its hub "
            "has received nothing to replay (point `journal` at the one it runs on)"
        )
    journal = await _open(project)
    try:
        return await read_recording(
            journal, systems, since=end - parse_duration(window), until=end, event_fields=fields
        )
    finally:
        await journal.close()


@app.command()
def load(
    directory: ProjectDir = None,
    rate: Rate = 1.0,
    duration: Duration = "60s",
    drain: Duration = "2m",
    chaos: Annotated[
        list[str] | None, typer.Option(help="A fault during the run (repeatable): erp-down:20s@30s")
    ] = None,
    cancel_every: CancelEvery = 0,
    hub: HubMode = None,
    keep: Keep = None,
    seed: Seed = 7,
    json_out: JsonOut = None,
    replay: Replay = None,
    replay_until: ReplayUntil = None,
    speed: Speed = 10.0,
) -> None:
    """Drive the project against the sandbox simulators at a rate, or replay a slice of its
    real traffic time-compressed (--replay 2h --speed 60), and report throughput, latency per
    flow, backlog, drain time and lost / duplicated / out-of-order effects.

    Exit status: 0 every guarantee held, 1 one did not (or something was left parked), 2 bad
    input."""
    raise typer.Exit(
        _load(
            directory,
            chaos=chaos or [],
            rate=rate,
            duration=duration,
            drain=drain,
            cancel_every=cancel_every,
            hub=hub,
            keep=keep,
            seed=seed,
            json_out=json_out,
            replay=replay,
            replay_until=replay_until,
            speed=speed,
        )
    )


@app.command("chaos")
def chaos_run(
    scenarios: Annotated[
        list[str],
        typer.Argument(help="Faults: erp-down:20s@30s throttle:shop:15s@10s kill-hub@40s"),
    ],
    directory: Annotated[
        Path | None, typer.Option("--project", "-p", help="Project folder (default: .)")
    ] = None,
    rate: Rate = 1.0,
    duration: Duration = "60s",
    drain: Duration = "2m",
    cancel_every: CancelEvery = 0,
    hub: HubMode = None,
    keep: Keep = None,
    seed: Seed = 7,
    json_out: JsonOut = None,
    replay: Replay = None,
    replay_until: ReplayUntil = None,
    speed: Speed = 10.0,
) -> None:
    """A load run with faults, each FAULT:SYSTEM:LENGTH@START,OPTION=VALUE (all but FAULT
    optional): a target down, a storm of 429s, slow or lost answers, resets, malformed,
    duplicate and reordered webhooks, kill -9 of the hub. The report says which guarantees
    held."""
    raise typer.Exit(
        _load(
            directory,
            chaos=scenarios,
            rate=rate,
            duration=duration,
            drain=drain,
            cancel_every=cancel_every,
            hub=hub,
            keep=keep,
            seed=seed,
            json_out=json_out,
            replay=replay,
            replay_until=replay_until,
            speed=speed,
        )
    )
