"""A real Tryton 8.2 ERP on loopback, with its own venv and a SQLite database, for tests and demos.

`LocalTryton` installs the pinned Tryton set into a venv of its own under a cache directory
(`~/.cache/seamline/tryton-8.2`: PyPI wheels only, about 10 s), builds a database once (modules
activated, then `tryton_bootstrap.py` run by that venv's interpreter: company, chart, fiscal
year, payment term, category "Goods", countries, demo stock) and keeps it as a template. Each
start copies the template into its own directory and runs `trytond` on 127.0.0.1 at a free
port: about 45 s the first time, a few seconds after. trytond is never imported here.

The template is keyed by the bootstrap script, the pins and the month: the month because the
fiscal year it holds runs from six months before its making to five months after, so an
older template could not post invoices.

    python -m seamline.sandbox.tryton DIR    # start one in DIR, print one JSON ready line
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from seamline.errors import SeamlineError

PINS = (
    "trytond==8.2.1",
    "trytond_account==8.2.1",
    "trytond_stock==8.2.1",
    "trytond_sale==8.2.0",
    "trytond_product==8.2.0",
    "trytond_party==8.2.0",
    "trytond_company==8.2.0",
    "trytond_currency==8.2.0",
    "trytond_country==8.2.0",
    "trytond_account_invoice==8.2.0",
    "trytond_account_invoice_stock==8.2.0",
    "trytond_account_product==8.2.0",
    "proteus==8.2.0",
    "Werkzeug==3.1.9",
    "lxml==6.1.3",
    "python-sql==1.8.1",
    "pwdlib==0.3.1",
    "argon2-cffi==25.1.0",
)
MODULES = ("sale", "stock", "product", "party", "company", "currency", "account")
DEFAULT_CACHE = Path.home() / ".cache" / "seamline" / "tryton-8.2"
BOOTSTRAP = Path(__file__).with_name("tryton_bootstrap.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalTryton:
    """One trytond: `start()`, `url`, `database`, `user`, `password`, `ids`, `stop()`."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        cache: Path | None = None,
        database: str = "seamline",
        port: int | None = None,
    ) -> None:
        self.dir = Path(directory or tempfile.mkdtemp(prefix="seamline-tryton-"))
        self.cache = Path(cache or DEFAULT_CACHE)
        self.database = database
        self.port = port or free_port()
        self.user = "admin"
        self.password = "admin"
        self.ids: dict[str, int] = {}
        """What the bootstrap made: company, warehouse, storage, unit, category, payment_term."""
        self.timings: dict[str, float] = {}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def _venv(self) -> Path:
        return self.cache / "venv"

    @property
    def _template(self) -> Path:
        recipe = hashlib.sha256(BOOTSTRAP.read_bytes() + "\n".join(PINS).encode()).hexdigest()
        return self.cache / f"template-{datetime.date.today():%Y-%m}-{recipe[:8]}"

    # --- cache: the venv and the template database ----------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One builder at a time per cache, across processes (parallel test sessions)."""
        self.cache.mkdir(parents=True, exist_ok=True)
        with (self.cache / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def install(self) -> None:
        """The pinned set in the cache's venv; reinstalled only when the pins change."""
        marker = self._venv / "seamline-pins.txt"
        wanted = "\n".join(PINS) + "\n"
        if marker.exists() and marker.read_text() == wanted:
            return
        started = time.monotonic()
        shutil.rmtree(self._venv, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(self._venv)], what="creating Tryton's venv")
        _run(
            [
                str(self._venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *PINS,
            ],
            what="installing Tryton from PyPI",
            timeout=600,
        )
        marker.write_text(wanted)
        self.timings["install"] = time.monotonic() - started

    def build_template(self) -> None:
        """This month's template database: modules activated, business bootstrap run."""
        if (self._template / "ids.json").exists():
            return
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix="build-", dir=self.cache))
        try:
            conf = _write_config(work, port=free_port())
            (work / f"{self.database}.sqlite").touch()
            password = work / "password"
            password.write_text(self.password)
            env = {**os.environ, "TRYTONPASSFILE": str(password)}
            admin = str(self._venv / "bin" / "trytond-admin")
            db = ["-c", str(conf), "-d", self.database]
            _run([admin, *db, "--all", "--email", "admin@example.com"], what="init", env=env)
            _run(
                [admin, *db, "-u", *MODULES, "--activate-dependencies"],
                what="activating Tryton's modules",
                env=env,
            )
            out = _run(
                [str(self._venv / "bin" / "python"), str(BOOTSTRAP), str(conf), self.database],
                what="the business bootstrap",
            )
            ids = json.loads(out.strip().splitlines()[-1])
            for old in self.cache.glob("template-*"):
                shutil.rmtree(old, ignore_errors=True)
            self._template.mkdir(parents=True)
            shutil.copy2(work / f"{self.database}.sqlite", self._template)
            (self._template / "ids.json").write_text(json.dumps(ids))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.timings["template"] = time.monotonic() - started

    # --- life cycle -----------------------------------------------------------------------

    def start(self, *, timeout: float = 60.0) -> LocalTryton:
        with self._locked():
            self.install()
            self.build_template()
        started = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        # Copied while no server has it open: a live SQLite file in WAL mode is not a copy.
        shutil.copy2(self._template / f"{self.database}.sqlite", self.dir)
        self.ids = json.loads((self._template / "ids.json").read_text())
        conf = _write_config(self.dir, port=self.port)
        with (self.dir / "trytond.log").open("ab") as log:
            self._process = subprocess.Popen(
                [str(self._venv / "bin" / "trytond"), "-c", str(conf), "-d", self.database],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready(timeout)
        self.timings["start"] = time.monotonic() - started
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        body = json.dumps({"id": 0, "method": "common.server.version", "params": []}).encode()
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise SeamlineError(f"trytond exited at start: see {self.dir / 'trytond.log'}")
            request = urllib.request.Request(
                f"{self.url}/rpc/", body, {"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SeamlineError(f"trytond not ready in {timeout:g} s: see {self.dir}")
            time.sleep(0.1)

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def ready_line(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "database": self.database,
            "user": self.user,
            "password": self.password,
            "pid": self.pid,
            **self.ids,
            "seconds": {k: round(v, 1) for k, v in self.timings.items()},
        }


def _write_config(directory: Path, *, port: int) -> Path:
    conf = directory / "trytond.conf"
    conf.write_text(
        "[database]\nuri = sqlite://\n"
        f"path = {directory}\n"
        f"[web]\nlisten = 127.0.0.1:{port}\n"
        # Tests log in often and sit idle between cases: Tryton's defaults (5 failed logins,
        # 600 s idle) are for people.
        "[session]\ntimeout = 3600\nmax_attempt = 1000\nmax_attempt_ip_network = 100000\n"
    )
    return conf


def _run(
    args: list[str], *, what: str, env: dict[str, str] | None = None, timeout: float = 300
) -> str:
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise SeamlineError(f"Tryton sandbox: {what} took over {timeout:g} s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout)[-2000:]
        raise SeamlineError(f"Tryton sandbox: {what} failed ({done.returncode}):\n{tail}")
    return done.stdout


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    # trytond runs in its own session: stop it on SIGTERM too, not only on Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    tryton = LocalTryton(directory)
    try:
        tryton.start()
        print(json.dumps(tryton.ready_line()), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while tryton.running():
                time.sleep(1)
    finally:
        tryton.stop()


if __name__ == "__main__":
    main()
