"""One SFTP session to the 3PL, opened on first use and again after it broke.

Every call goes through `SftpClient.call`, the one place an SSH or SFTP failure becomes a
decision (see `errors.py`):

| failure                                           | error                                |
|---------------------------------------------------|--------------------------------------|
| refused, reset, timed out, connection lost        | TransientError (the session is dropped)|
| the same while a rename was on its way            | UnknownOutcomeError: it may be done  |
| authentication refused, host key not the known one| PermanentError                       |
| no such file, permission denied, already exists   | PermanentError                       |
| any other SFTP status (FX_FAILURE: disk, quota)   | TransientError                       |
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncssh

from seamline.connectors.sftp_csv.connector import SftpCsvOptions
from seamline.errors import PermanentError, SeamlineError, TransientError, UnknownOutcomeError

T = TypeVar("T")

_PERMANENT_SFTP = frozenset(
    {
        asyncssh.FX_NO_SUCH_FILE,
        asyncssh.FX_PERMISSION_DENIED,
        asyncssh.FX_FILE_ALREADY_EXISTS,
        asyncssh.FX_OP_UNSUPPORTED,
        asyncssh.FX_NO_SUCH_PATH,
        asyncssh.FX_NOT_A_DIRECTORY,
        asyncssh.FX_FILE_IS_A_DIRECTORY,
        asyncssh.FX_INVALID_FILENAME,
    }
)


@dataclass(frozen=True, slots=True)
class RemoteFile:
    name: str
    size: int
    mtime: float


class SftpClient:
    def __init__(self, name: str, options: SftpCsvOptions) -> None:
        self.name = name
        self.options = options
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        sftp, conn = self._sftp, self._conn
        self._sftp = self._conn = None
        if sftp is not None:
            sftp.exit()
        if conn is not None:
            conn.close()
            await conn.wait_closed()

    async def _session(self) -> asyncssh.SFTPClient:
        async with self._lock:
            if self._sftp is not None:
                return self._sftp
            o = self.options
            known_hosts: Any = None
            if o.known_host_key is not None:
                try:
                    key = asyncssh.import_public_key(o.known_host_key)
                except (asyncssh.KeyImportError, ValueError) as exc:
                    raise PermanentError(
                        f"{self.name}: known_host_key is not a key ({exc})"
                    ) from None
                known_hosts = ([key], [], [])
            client_keys: Any = None
            if o.private_key is not None:
                try:
                    client_keys = [
                        asyncssh.import_private_key(
                            o.private_key.reveal(),
                            o.passphrase.reveal() if o.passphrase else None,
                        )
                    ]
                except (asyncssh.KeyImportError, ValueError) as exc:
                    raise PermanentError(
                        f"{self.name}: private_key cannot be read ({exc})"
                    ) from None
            try:
                conn = await asyncio.wait_for(
                    asyncssh.connect(
                        o.host,
                        o.port,
                        username=o.username,
                        password=o.password.reveal() if o.password else None,
                        client_keys=client_keys,
                        known_hosts=known_hosts,
                        agent_path=None,
                        config=None,
                        connect_timeout=o.timeout,
                    ),
                    o.timeout,
                )
            except asyncssh.PermissionDenied as exc:
                raise PermanentError(f"{self.name}: the 3PL refused the login ({exc})") from None
            except asyncssh.HostKeyNotVerifiable as exc:
                raise PermanentError(
                    f"{self.name}: the server's host key is not known_host_key ({exc})"
                ) from None
            except (asyncssh.Error, OSError, TimeoutError) as exc:
                raise TransientError(
                    f"{self.name}: cannot reach {o.host}:{o.port} ({exc!r})"
                ) from None
            try:
                self._sftp = await asyncio.wait_for(conn.start_sftp_client(), o.timeout)
            except (asyncssh.Error, OSError, TimeoutError) as exc:
                conn.close()
                await conn.wait_closed()
                raise TransientError(f"{self.name}: no SFTP session ({exc!r})") from None
            self._conn = conn
            return self._sftp

    async def call(
        self,
        what: str,
        op: Callable[[asyncssh.SFTPClient], Awaitable[T]],
        *,
        unknown_on_loss: bool = False,
    ) -> T:
        """Run `op` on the session; map its failure. `unknown_on_loss`: a lost answer may
        mean it was done (a rename)."""
        sftp = await self._session()
        try:
            return await asyncio.wait_for(op(sftp), self.options.timeout)
        except asyncssh.SFTPError as exc:
            if exc.code in _PERMANENT_SFTP:
                raise PermanentError(f"{self.name}: {what}: {exc.reason}") from None
            if exc.code in (asyncssh.FX_CONNECTION_LOST, asyncssh.FX_NO_CONNECTION):
                await self.close()
                raise self._lost(what, exc, unknown_on_loss) from None
            raise TransientError(f"{self.name}: {what}: {exc.reason}") from None
        except (asyncssh.Error, OSError, TimeoutError) as exc:
            await self.close()
            raise self._lost(what, exc, unknown_on_loss) from None

    def _lost(self, what: str, exc: BaseException, unknown: bool) -> SeamlineError:
        if unknown:
            return UnknownOutcomeError(f"{self.name}: {what}: no answer ({exc!r}); it may be done")
        return TransientError(f"{self.name}: {what}: {exc!r}")

    # --- the few verbs the connector uses -----------------------------------------------

    async def list(self, path: str, *, missing_ok: bool = False) -> list[RemoteFile]:
        """The regular files in `path`; with `missing_ok`, none when the folder is not there."""

        async def op(sftp: asyncssh.SFTPClient) -> list[RemoteFile]:
            found = []
            try:
                entries = await sftp.readdir(path)
            except asyncssh.SFTPNoSuchFile:
                if missing_ok:
                    return []
                raise
            for entry in entries:
                attrs = entry.attrs
                if attrs.type not in (asyncssh.FILEXFER_TYPE_REGULAR, None):
                    continue
                name = entry.filename
                found.append(
                    RemoteFile(
                        name if isinstance(name, str) else name.decode(),
                        int(attrs.size or 0),
                        float(attrs.mtime or 0),
                    )
                )
            return found

        return await self.call(f"list {path}", op)

    async def read(self, path: str) -> bytes | None:
        """The file's bytes; None when it is not there (any more)."""

        async def op(sftp: asyncssh.SFTPClient) -> bytes | None:
            try:
                async with sftp.open(path, "rb") as f:
                    data = await f.read()
            except asyncssh.SFTPNoSuchFile:
                return None
            return data if isinstance(data, bytes) else data.encode()

        return await self.call(f"read {path}", op)

    async def write(self, path: str, data: bytes) -> None:
        async def op(sftp: asyncssh.SFTPClient) -> None:
            async with sftp.open(path, "wb") as f:
                await f.write(data)

        await self.call(f"write {path}", op)

    async def rename(self, old: str, new: str) -> bool:
        """Rename without replacing; False when `new` exists already."""

        async def op(sftp: asyncssh.SFTPClient) -> bool:
            try:
                await sftp.rename(old, new)
            except asyncssh.SFTPFileAlreadyExists:
                return False
            except asyncssh.SFTPFailure:
                # SFTPv3 servers (OpenSSH) answer a taken name with a bare failure.
                if await sftp.exists(new):
                    return False
                raise
            return True

        return await self.call(f"rename {old} to {new}", op, unknown_on_loss=True)

    async def remove(self, path: str) -> None:
        async def op(sftp: asyncssh.SFTPClient) -> None:
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await sftp.remove(path)

        await self.call(f"remove {path}", op)

    async def makedirs(self, path: str) -> None:
        async def op(sftp: asyncssh.SFTPClient) -> None:
            await sftp.makedirs(path, exist_ok=True)

        await self.call(f"create {path}", op)
