"""`seamline user` and `seamline token` as an admin uses them: the password is never shown, the
token is shown once, and both work against the console."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seamline.cli import app, write_example
from tests.console.site import PASSWORD, Browser, run, served

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_example(tmp_path / "project")
    return tmp_path / "project"


def test_user_add_from_stdin_list_and_remove(project: Path, tmp_path: Path) -> None:
    added = runner.invoke(
        app,
        ["user", "add", "alice", "--role", "operator", "--password-file", "-", "-p", str(project)],
        input=PASSWORD + "\n",
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["user", "list", "-p", str(project)])
    assert "alice" in listed.output and "operator" in listed.output
    assert PASSWORD not in added.output + listed.output

    async def signs_in() -> int:
        async with served(tmp_path) as site:
            status, _ = await Browser(site, site.client()).login("alice", PASSWORD)
            return status

    assert run(signs_in()) == 303
    removed = runner.invoke(app, ["user", "remove", "alice", "-p", str(project)])
    assert removed.exit_code == 0
    assert run(signs_in()) == 401


def test_user_add_prompts_without_echo_and_checks_the_repeat(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    typed = iter([PASSWORD, PASSWORD + "!"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(typed))
    differ = runner.invoke(app, ["user", "add", "bob", "-p", str(project)])
    assert differ.exit_code == 2 and "differ" in differ.output
    typed = iter([PASSWORD, PASSWORD])
    ok = runner.invoke(app, ["user", "add", "bob", "-p", str(project)])
    assert ok.exit_code == 0 and PASSWORD not in ok.output


@pytest.mark.parametrize(
    ("args", "text", "problem"),
    [
        (["--role", "root"], PASSWORD, "unknown role"),
        (["--role", "viewer"], "short", "at least 12"),
    ],
)
def test_user_add_refuses_bad_roles_and_short_passwords(
    project: Path, args: list[str], text: str, problem: str
) -> None:
    result = runner.invoke(
        app,
        ["user", "add", "carol", *args, "--password-file", "-", "-p", str(project)],
        input=text + "\n",
    )
    assert result.exit_code != 0 and problem in result.output


def test_token_add_prints_the_secret_once_and_revoke_refuses_it(
    project: Path, tmp_path: Path
) -> None:
    made = runner.invoke(app, ["token", "add", "ci", "--role", "viewer", "-p", str(project)])
    assert made.exit_code == 0
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("sl_")
    listed = runner.invoke(app, ["token", "list", "-p", str(project)])
    assert "ci" in listed.output and secret not in listed.output

    async def status() -> int:
        async with (
            served(tmp_path) as site,
            site.client().get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}) as r,
        ):
            return r.status

    assert run(status()) == 200
    assert runner.invoke(app, ["token", "revoke", "1", "-p", str(project)]).exit_code == 0
    assert run(status()) == 401
