"""A real SFTP server on loopback (asyncssh), chrooted to the simulator's root directory."""

from __future__ import annotations

import os
from pathlib import Path

import asyncssh


class _Login(asyncssh.SSHServer):
    def __init__(self, server: SftpServer) -> None:
        self._server = server
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._server.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._server.connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == self._server.username and password == self._server.password

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username == self._server.username and (
            key.public_data == self._server.client_key.public_data
        )


class _Files(asyncssh.SFTPServer):
    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], server: SftpServer) -> None:
        super().__init__(chan, chroot=os.fsencode(server.root))
        self._server = server

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        super().rename(oldpath, newpath)
        if self._server.lose_rename_answers > 0:
            # Done, but the answer never leaves: the client cannot tell whether it was.
            self._server.lose_rename_answers -= 1
            self.connection.abort()


class SftpServer:
    """One user (password or key) on 127.0.0.1; `port` is known after `start()`."""

    def __init__(self, root: Path, *, username: str, password: str, port: int = 0) -> None:
        self.root = root
        self.username = username
        self.password = password
        self.port = port
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.connections: set[asyncssh.SSHServerConnection] = set()
        self.lose_rename_answers = 0
        """Renames still to do whose answer is lost (the connection is cut instead)."""
        self._acceptor: asyncssh.SSHAcceptor | None = None

    async def start(self) -> None:
        self._acceptor = await asyncssh.listen(
            "127.0.0.1",
            self.port,
            server_host_keys=[self.host_key],
            server_factory=lambda: _Login(self),
            sftp_factory=lambda chan: _Files(chan, self),
            allow_scp=False,
            config=None,
        )
        self.port = self._acceptor.get_port()

    async def stop(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None
        for conn in list(self.connections):
            conn.close()
            await conn.wait_closed()
        self.connections.clear()

    async def drop_connections(self) -> None:
        """Cut every session, as a 3PL's server restart would."""
        for conn in list(self.connections):
            conn.abort()
            await conn.wait_closed()
