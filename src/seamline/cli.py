"""The `seamline` command: init, check, run, status, replay, demo, user, token (and, from
`cli_checks.py`, reconcile, landscape, test, plan; from `cli_change.py`, apply, rollback)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich import box
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from seamline.errors import ProjectError, SeamlineError
from seamline.journal.base import Role, Selection
from seamline.journal.group_commit import GroupCommitJournal
from seamline.observe import log as logs
from seamline.observe.status import age_text, snapshot
from seamline.project import Project, load_project
from seamline.settings import default_project_dir, editor, operator_name

app = typer.Typer(
    help="Seamline: the integration hub for growing commerce businesses.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

ProjectDir = Annotated[
    Path | None,
    typer.Argument(help="Project folder (default: $SEAMLINE_PROJECT or .)", show_default=False),
]


def _project(directory: Path | None, *, secrets: bool = True) -> Project:
    try:
        return load_project(directory or default_project_dir(), secrets=secrets)
    except ProjectError as exc:
        _print_problems(exc)
        raise typer.Exit(2) from None


def _print_problems(exc: ProjectError) -> None:
    err.print(f"[bold red]{len(exc.problems)} problem(s)[/] in the project:")
    for problem in exc.problems:
        err.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)


def _run(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(coro)


@app.command()
def init(directory: Annotated[Path, typer.Argument(help="Folder to create")]) -> None:
    """Write a working example project: a webshop sending orders to an order system."""
    if directory.exists() and any(directory.iterdir()):
        err.print(f"{directory} is not empty; choose a new folder")
        raise typer.Exit(2)
    write_example(directory)
    out.print(f"Wrote an example project to [bold]{directory}[/]. Next: seamline check {directory}")


def write_example(directory: Path) -> None:
    from seamline.connectors.http.signature import generate_secret

    template = resources.files("seamline.templates").joinpath("project")
    with resources.as_file(template) as source:
        shutil.copytree(
            source, directory, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    (directory / "gitignore").rename(directory / ".gitignore")
    secrets = directory / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "webshop.secret").write_text(generate_secret() + "\n")
    (secrets / "orders-api.token").write_text("Bearer " + os.urandom(16).hex() + "\n")
    for path in secrets.iterdir():
        path.chmod(0o600)


@app.command()
def check(directory: ProjectDir = None) -> None:
    """Validate the whole project; report every problem with file, line and what to do."""
    project = _project(directory)
    more = ""
    if project.checks:
        more += f", {len(project.checks)} checks"
    if project.externals:
        more += f", {len(project.externals)} integrations outside the hub"
    out.print(
        f"[green]ok[/]: {len(project.systems)} systems, {len(project.flows)} flows{more} "
        f"in {project.dir}"
    )


@app.command()
def run(
    directory: ProjectDir = None,
    listen: Annotated[
        str | None,
        typer.Option(
            help="host:port to serve: webhooks and health (ingest, all), health only (worker, "
            "scheduler; only when given)"
        ),
    ] = None,
    role: Annotated[
        str,
        typer.Option(
            help="all: every role; ingest: journal webhooks; worker: deliver; scheduler: route, "
            "expire leases, purge (one active at a time). Separate roles need PostgreSQL."
        ),
    ] = "all",
    worker_of: Annotated[
        str | None,
        typer.Option(hidden=True, help="set by a hub for the worker processes it starts"),
    ] = None,
) -> None:
    """Run the hub: by default ingest, router, workers and scheduler in one process."""
    from seamline.engine.hub import ROLES, Hub

    if role not in ROLES:
        err.print(f"unknown role '{role}': use one of {', '.join(ROLES)}")
        raise typer.Exit(2)
    project = _project(directory)
    logs.configure(project.settings.log_level)
    address = None
    if listen:
        host, _, port = listen.rpartition(":")
        address = (host or "127.0.0.1", int(port))
    try:
        _run(Hub(project, listen=address, role=role, worker_of=worker_of).run())
    except SeamlineError as exc:
        err.print(f"[red]cannot start:[/] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None


async def _open(project: Project) -> GroupCommitJournal:
    from seamline.journal.location import journal_for

    journal = journal_for(project)
    await journal.open()
    return journal


def status_table(flows: list[Any], systems: list[Any]) -> Table:
    table = Table(
        title="flows",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=0,  # the box's column gap is enough: every header fits in 80 columns whole
    )
    for column in (
        "flow",
        "pending",
        "in flight",
        "delivered",
        "retrying",
        "dead",
        "review",
        "skipped",
        "oldest",
    ):
        table.add_column(
            column, no_wrap=column == "flow", justify="left" if column == "flow" else "right"
        )
    for f in flows:
        oldest = f.oldest_age
        late = oldest is not None and oldest > f.sla
        table.add_row(
            f.flow,
            str(f.count("pending")),
            str(f.count("leased")),
            str(f.count("delivered")),
            str(f.count("retrying")),
            f"[red]{f.count('dead')}[/]" if f.count("dead") else "0",
            str(f.count("review")),
            str(f.count("skipped") + f.count("discarded")),
            f"[red]{age_text(oldest)}[/]" if late else age_text(oldest),
        )
    return table


def version_text(disk: str, live: str | None) -> str:
    """A flow's version: the one on disk, and the one live when the journal's newest differs
    (`disk v2, live v1`)."""
    if live is None:
        return f"disk {disk}, not live yet"
    return disk if live == disk else f"disk {disk}, live {live}"


def versions_table(project: Project, live: Mapping[str, str]) -> Table:
    """Each flow's version in the loaded project against the newest that went live."""
    table = Table(
        title="versions", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=0
    )
    table.add_column("flow", no_wrap=True)
    table.add_column("version")
    for name, flow in sorted(project.flows.items()):
        text = version_text(flow.version, live.get(name))
        table.add_row(name, text if live.get(name) == flow.version else f"[yellow]{text}[/]")
    return table


def systems_table(systems: list[Any]) -> Table:
    table = Table(
        title="systems", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=0
    )
    for column in ("system", "rejected", "circuit", "in flight", "rate limit", "circuit opened"):
        table.add_column(column)
    for s in systems:
        b = s.budget or {}
        circuit = b.get("circuit", "-")
        colour = {"closed": "green", "open": "red", "half-open": "yellow"}.get(circuit, "white")
        table.add_row(
            s.system,
            f"[red]{s.rejected}[/]" if s.rejected else "0",
            f"[{colour}]{circuit}[/]",
            f"{b.get('in_flight', '-')}/{b.get('concurrency', '-')}" if b else "-",
            f"{b['rate']:g}/s" if b.get("rate") else ("unlimited" if b else "-"),
            str(b.get("opened", "-")),
        )
    return table


@app.command()
def status(
    directory: ProjectDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")] = False,
) -> None:
    """Per flow: pending, in flight, delivered, retrying, dead, oldest open; per system: budget."""
    project = _project(directory)

    async def go() -> tuple[list[Any], list[Any], dict[str, str]]:
        journal = await _open(project)
        try:
            flows, systems = await snapshot(journal, project)
            live: dict[str, str] = {}
            for name in project.flows:
                kept = await journal.flow_versions(name, limit=1)
                if kept:
                    live[name] = kept[0]["version"]
            return flows, systems, live
        finally:
            await journal.close()

    flows, systems, live = _run(go())
    if as_json:
        versions = {
            name: {"disk": flow.version, "live": live.get(name)}
            for name, flow in sorted(project.flows.items())
        }
        print(
            orjson.dumps(
                {
                    "flows": [vars(f) for f in flows],
                    "systems": [vars(s) for s in systems],
                    "versions": versions,
                }
            ).decode()
        )
        return
    out.print(status_table(flows, systems))
    out.print(versions_table(project, live))
    out.print(systems_table(systems))
    for s in systems:
        for text in s.warnings:
            out.print(f"[yellow]warning[/] {s.system}: {text}")


def _when(text: str | None) -> float | None:
    if text is None:
        return None
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.astimezone()
    return when.timestamp()


@app.command()
def replay(
    directory: ProjectDir = None,
    delivery: Annotated[
        list[int] | None, typer.Option("--delivery", "-d", help="Delivery id (repeatable)")
    ] = None,
    flow: Annotated[str | None, typer.Option(help="Only this flow")] = None,
    state: Annotated[
        list[str] | None, typer.Option(help="States to select (default: dead)")
    ] = None,
    error_class: Annotated[
        str | None, typer.Option(help="transient, permanent, contract, unknown, bug...")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Created at or after (ISO time)")] = None,
    until: Annotated[str | None, typer.Option(help="Created before (ISO time)")] = None,
    edit: Annotated[
        bool, typer.Option(help="Edit the event data in $EDITOR first (one delivery)")
    ] = False,
    payload: Annotated[
        Path | None, typer.Option(help="Replace the event data with this JSON file (one delivery)")
    ] = None,
    discard: Annotated[
        str | None, typer.Option(help="Discard instead of replaying, with this reason")
    ] = None,
    rejected: Annotated[
        bool, typer.Option(help="Replay rejected messages (route them again)")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do it without asking")] = False,
    dry_run: Annotated[bool, typer.Option(help="Only show what would be done")] = False,
) -> None:
    """Replay dead deliveries (one, or by filter), edit and replay one, or discard with a reason."""
    project = _project(directory)
    actor = operator_name()

    async def go() -> int:
        journal = await _open(project)
        try:
            if rejected:
                return await _replay_rejected(journal, actor, yes=yes, dry_run=dry_run)
            selection = Selection(
                ids=delivery or (),
                flow=flow,
                states=tuple(state or ("dead",)),
                error_class=error_class,
                since=_when(since),
                until=_when(until),
            )
            rows = await journal.select(selection)
            if not rows:
                out.print("nothing matches")
                return 0
            _preview(rows)
            if dry_run:
                out.print(
                    f"[yellow]dry run[/]: {len(rows)} deliveries would be "
                    + ("discarded" if discard else "replayed")
                )
                return 0
            if not yes and not typer.confirm(
                f"{'Discard' if discard else 'Replay'} {len(rows)} deliveries?", default=False
            ):
                return 1
            ids = [int(str(r["id"])) for r in rows]
            if discard:
                done = await journal.discard(ids, actor=actor, reason=discard)
                out.print(f"discarded {done} of {len(ids)}")
                return 0
            body = None
            if edit or payload:
                if len(ids) != 1:
                    err.print("--edit and --payload work on one delivery; give --delivery ID")
                    return 2
                body = (
                    _edited_payload(payload)
                    if payload
                    else _edit(await _event_data(project, journal, ids[0]))
                )
                if body is None:
                    return 1
            versions = {name: f.version for name, f in project.flows.items()}
            done = 0
            with Progress(console=out, transient=True) as progress:
                task = progress.add_task("replaying", total=len(ids))
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    done += await journal.replay(
                        chunk, actor=actor, flow_versions=versions, payload=body
                    )
                    progress.advance(task, len(chunk))
            out.print(
                f"replayed {done} of {len(ids)} with the flow versions live now; "
                "a running hub sends them within seconds"
            )
            return 0
        finally:
            await journal.close()

    code = _run(go())
    if code:
        raise typer.Exit(code)


async def _replay_rejected(
    journal: GroupCommitJournal, actor: str, *, yes: bool, dry_run: bool
) -> int:
    rows = await journal.rejected()
    if not rows:
        out.print("no rejected messages")
        return 0
    table = Table("message", "system", "received", "reason")
    for r in rows[:50]:
        table.add_row(str(r["id"]), str(r["system"]), _fmt_time(r["received_at"]), str(r["reason"]))
    out.print(table)
    if dry_run:
        out.print(f"[yellow]dry run[/]: {len(rows)} messages would be routed again")
        return 0
    if not yes and not typer.confirm(f"Route {len(rows)} rejected messages again?", default=False):
        return 1
    done = await journal.replay_rejected([int(str(r["id"])) for r in rows], actor=actor)
    out.print(f"{done} messages will be routed again by the running hub")
    return 0


def _fmt_time(value: object) -> str:
    return dt.datetime.fromtimestamp(float(str(value))).isoformat(timespec="seconds")


def _preview(rows: list[dict[str, object]]) -> None:
    table = Table("delivery", "flow", "state", "attempts", "class", "last error", "created")
    for r in rows[:50]:
        table.add_row(
            str(r["id"]),
            str(r["flow"]),
            str(r["state"]),
            str(r["attempts"]),
            str(r["error_class"] or "-"),
            str(r["last_error"] or "-")[:80],
            _fmt_time(r["created_at"]),
        )
    out.print(table)
    if len(rows) > 50:
        out.print(f"... and {len(rows) - 50} more")


async def _event_data(
    project: Project, journal: GroupCommitJournal, delivery_id: int
) -> dict[str, Any]:
    """What a delivery sends: its edited payload, or its message decoded as the router does."""
    from seamline.engine.router import offline_router

    found = await journal.delivery_source(delivery_id)
    if found is None:
        raise typer.BadParameter(f"there is no delivery {delivery_id}")
    payload, message = found
    if payload is not None:
        data: dict[str, Any] = orjson.loads(payload)
        return data
    return offline_router(project).decode(message).data


def _edited_payload(path: Path) -> bytes | None:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        err.print(f"{path}: not a JSON file ({exc})")
        return None
    return orjson.dumps(data)


def _edit(data: dict[str, Any]) -> bytes | None:
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as handle:
        handle.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        name = handle.name
    try:
        subprocess.run([editor(), name], check=False)
        return _edited_payload(Path(name))
    finally:
        os.unlink(name)


@app.command()
def demo(
    duration: Annotated[
        float | None,
        typer.Option(help="Seconds to run [default: 60; 30 with --basic]", show_default=False),
    ] = None,
    rate: Annotated[float, typer.Option(help="Webhooks per second (--basic)")] = 200.0,
    keep: Annotated[Path | None, typer.Option(help="Keep the demo project in this folder")] = None,
    landscape: Annotated[
        bool,
        typer.Option(
            "--landscape/--basic",
            help="The whole demo shop (Shopify and 3PL simulators, a real Tryton installed the "
            "first time, the hub; orders with faults), or the basic webhook-to-sink demo",
        ),
    ] = True,
) -> None:
    """The demo shop: orders from a simulated Shopify become Tryton sales and 3PL files, parcels
    come back as fulfillments, stock follows; live summary, Ctrl-C stops everything."""
    if landscape:
        from seamline.demo_landscape import landscape as run_landscape

        raise typer.Exit(
            run_landscape(duration=60.0 if duration is None else duration, keep=keep, console=out)
        )
    from seamline.demo import run_demo

    code = _run(
        run_demo(duration=30.0 if duration is None else duration, rate=rate, keep=keep, console=out)
    )
    raise typer.Exit(code)


users = typer.Typer(help="People who may use the console and the REST API.", no_args_is_help=True)
tokens = typer.Typer(help="API tokens for the REST API.", no_args_is_help=True)
app.add_typer(users, name="user")
app.add_typer(tokens, name="token")
RoleOption = Annotated[str, typer.Option("--role", "-r", help="viewer, operator or admin")]
ProjectOption = Annotated[
    Path | None,
    typer.Option("--project", "-p", help="Project folder (default: $SEAMLINE_PROJECT or .)"),
]


def _role(text: str) -> Role:
    from seamline.console.credentials import role_of

    try:
        return role_of(text)
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from None


def _password(password_file: Path | None) -> str:
    """From a file, from stdin (`-`), or typed twice at a prompt; never echoed."""
    import getpass
    import sys

    if password_file is not None:
        text = sys.stdin.read() if str(password_file) == "-" else password_file.read_text()
        return text.rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        err.print("the passwords differ")
        raise typer.Exit(2)
    return first


@users.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The name to sign in with")],
    role: RoleOption = "viewer",
    password_file: Annotated[
        Path | None,
        typer.Option(help="Read the password from this file (- for stdin) instead of a prompt"),
    ] = None,
    project: ProjectOption = None,
) -> None:
    """Add a user (the password is asked for, never shown)."""
    from seamline.console.access import Access

    chosen = _role(role)
    password = _password(password_file)
    loaded = _project(project)

    async def go() -> str | None:
        journal = await _open(loaded)
        try:
            await Access(journal).add_user(name, chosen, password, actor=operator_name())
        except ValueError as exc:
            return str(exc)
        finally:
            await journal.close()
        return None

    problem = _run(go())
    if problem:
        err.print(problem)
        raise typer.Exit(1)
    out.print(f"added {name} ({chosen})")


@users.command("list")
def user_list(project: ProjectOption = None) -> None:
    """Users and their roles."""
    loaded = _project(project)

    async def go() -> list[dict[str, Any]]:
        journal = await _open(loaded)
        try:
            return await journal.users()
        finally:
            await journal.close()

    table = Table("name", "role", "added", "last seen", box=box.SIMPLE_HEAD)
    for u in _run(go()):
        seen = _fmt_time(u["last_seen"]) if u["last_seen"] else "-"
        table.add_row(u["name"], u["role"], _fmt_time(u["created_at"]), seen)
    out.print(table)


@users.command("remove")
def user_remove(
    name: Annotated[str, typer.Argument(help="The user to remove")],
    project: ProjectOption = None,
) -> None:
    """Remove a user; their sessions end."""
    loaded = _project(project)

    async def go() -> bool:
        journal = await _open(loaded)
        try:
            return await journal.remove_user(name, actor=operator_name())
        finally:
            await journal.close()

    if not _run(go()):
        err.print(f"there is no user {name!r}")
        raise typer.Exit(1)
    out.print(f"removed {name}")


@tokens.command("add")
def token_add(
    name: Annotated[str, typer.Argument(help="What uses it (a script, a dashboard)")],
    role: RoleOption = "viewer",
    project: ProjectOption = None,
) -> None:
    """Make an API token; it is printed once and only its hash is kept."""
    from seamline.console.access import Access

    chosen = _role(role)
    loaded = _project(project)

    async def go() -> tuple[int, str]:
        journal = await _open(loaded)
        try:
            return await Access(journal).add_token(name, chosen, actor=operator_name())
        finally:
            await journal.close()

    token_id, secret = _run(go())
    err.print(f"token {token_id} ({name}, {chosen}); it is shown this once:")
    print(secret)


@tokens.command("list")
def token_list(project: ProjectOption = None) -> None:
    """API tokens (never their secrets)."""
    loaded = _project(project)

    async def go() -> list[dict[str, Any]]:
        journal = await _open(loaded)
        try:
            return await journal.tokens()
        finally:
            await journal.close()

    table = Table("id", "name", "role", "added", "by", "last used", "revoked", box=box.SIMPLE_HEAD)
    for t in _run(go()):
        table.add_row(
            str(t["id"]),
            t["name"],
            t["role"],
            _fmt_time(t["created_at"]),
            t["created_by"],
            _fmt_time(t["last_used"]) if t["last_used"] else "-",
            _fmt_time(t["revoked_at"]) if t["revoked_at"] else "-",
        )
    out.print(table)


@tokens.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (seamline token list)")],
    project: ProjectOption = None,
) -> None:
    """Revoke a token: refused from its next request on."""
    import time

    loaded = _project(project)

    async def go() -> bool:
        journal = await _open(loaded)
        try:
            return await journal.revoke_token(token_id, actor=operator_name(), now=time.time())
        finally:
            await journal.close()

    if not _run(go()):
        err.print(f"there is no live token {token_id}")
        raise typer.Exit(1)
    out.print(f"revoked token {token_id}")


# The commands of checks, the landscape and safe change live in their own module; importing
# it registers them on `app` (it imports `app` from here, so it comes last).
from seamline import cli_change, cli_checks  # noqa: E402, F401


def main() -> None:
    app()


if __name__ == "__main__":
    # Run as `python -m seamline.cli`, this file is `__main__`, and `cli_checks` registered
    # its commands on the `app` of `seamline.cli`: run that one.
    from seamline.cli import main as registered

    registered()
