"""A throw-away PostgreSQL cluster on loopback, owned by whoever starts it.

Tests, benchmarks and the reliability harness need a real server they can stop with
`pg_ctl stop -m immediate` and start again. `LocalPostgres` runs Debian's PostgreSQL binaries
(`apt-get install postgresql`; `./dev test` installs them) on a data directory of its own, bound
to 127.0.0.1 on a free port, with durability left on (fsync, synchronous_commit). Run as root,
the server runs as the `postgres` user, because PostgreSQL refuses to run as root.

    python -m seamline.sandbox.postgres DIR    # start a cluster in DIR, print its URL
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seamline.errors import SeamlineError

SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "shared_buffers": "256MB",
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "2GB",
    "autovacuum_naptime": "5s",
    "log_min_messages": "warning",
    "logging_collector": "off",
}


def bin_dir() -> Path:
    """Where `initdb` and `pg_ctl` live; the newest installed major version wins."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    raise SeamlineError(
        "PostgreSQL's server programs are not installed: `apt-get install postgresql` "
        "(./dev test installs it when run as root)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalPostgres:
    """One cluster: `start()`, `url(db)`, `create_database()`, `crash()`, `stop()`."""

    def __init__(self, directory: Path | None = None, *, port: int | None = None) -> None:
        self.dir = Path(directory or tempfile.mkdtemp(prefix="seamline-pg-"))
        self.data = self.dir / "data"
        self.port = port or free_port()
        self.bin = bin_dir()
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    # --- running the server's own programs --------------------------------------------------

    @property
    def _ctl(self) -> str:
        return str(self.bin / "pg_ctl")

    def _as_owner(self, *args: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._as_owner(*args), capture_output=True, text=True, check=check, timeout=120
        )

    def _give_to_owner(self, path: Path) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(path, entry.pw_uid, entry.pw_gid)

    # --- life cycle -------------------------------------------------------------------------

    def init(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self._give_to_owner(self.dir)
        if (self.data / "PG_VERSION").exists():
            return
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        )
        lines = [f"{k} = {v}" for k, v in SETTINGS.items()]
        lines.append(f"port = {self.port}")
        lines.append(f"unix_socket_directories = '{self.dir}'")
        conf = self.data / "postgresql.auto.conf"
        with conf.open("a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")

    def start(self) -> LocalPostgres:
        self.init()
        self._run(
            self._ctl,
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "server.log"),
            "-o",
            f"-p {self.port}",
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run(self._ctl, "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def crash(self) -> None:
        """`pg_ctl stop -m immediate`: no checkpoint, recovery from the WAL at the next start."""
        self.stop("immediate")

    def running(self) -> bool:
        return self._run(self._ctl, "-D", str(self.data), "status", check=False).returncode == 0

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- databases --------------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def wait_ready(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def main() -> None:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    pg = LocalPostgres(directory).start()
    print(pg.url(), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while pg.running():
            time.sleep(1)
    pg.stop()


if __name__ == "__main__":
    main()
