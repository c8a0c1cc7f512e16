"""A throwaway PostgreSQL for central's tests (a pytest plugin, registered in tests/conftest.py).

`postgres_server` is a cluster of its own, made with Debian's initdb in a temporary directory and
started with pg_ctl once per test session, the first time a test asks for it; it listens on a unix
socket in that directory and on a free loopback port, and is stopped and deleted at the end of the
session. Its every database is a test's: `postgres_server.database()` makes a new, empty one and drops
it afterwards. Nothing in it outlives the session, so it does without durability (fsync,
synchronous_commit and full-page writes off), which makes it several times quicker.

initdb refuses to run as root (CI runs as root): there the cluster belongs to, and runs as, the
``postgres`` user that Debian's package creates; any other user runs it as themselves.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

SERVER_USER = "postgres"     # Debian's package makes it; the cluster's owner when the tests run as root
_START_TIMEOUT_S = 60
# Throwaway: nothing survives the session, so nothing has to survive a crash.
_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
             "max_connections": "300", "listen_addresses": "127.0.0.1"}
_NOT_DURABLE = ("fsync", "synchronous_commit", "full_page_writes")   # left at PostgreSQL's own with durable=True


def find_bindir() -> Path:
    """Where initdb and pg_ctl are: Debian's newest /usr/lib/postgresql/<version>/bin, else the PATH's."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if versions:
        return versions[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql, as `make apt` does); "
                           "or leave its tests out with -m 'not postgresql'")
    return Path(initdb).parent


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A running throwaway cluster: `database()` gives a new empty database's SQLAlchemy URL."""

    def __init__(self, bindir: Path, root: Path, port: int, run_as: pwd.struct_passwd | None) -> None:
        self.bindir = bindir
        self.root = root
        self.port = port
        self._run_as = run_as
        self._admin: psycopg.Connection | None = None
        self._templates: set[str] = set()

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root

    def _run(self, *args: str) -> None:
        """A PostgreSQL program, as the cluster's owner; its output goes to the log, shown on failure."""
        options: dict = {}
        if self._run_as is not None:
            options = {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid, "extra_groups": []}
        result = subprocess.run([str(self.bindir / args[0]), *args[1:]], cwd=self.root, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=_START_TIMEOUT_S + 30,
                                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C",
                                     "HOME": str(self.root)}, **options)
        if result.returncode != 0:
            log = self.root / "server.log"
            raise RuntimeError("%s failed (exit %d): %s%s\n%s" % (
                args[0], result.returncode, result.stdout, result.stderr,
                log.read_text(errors="replace") if log.exists() else ""))

    def start(self, *, durable: bool = False) -> None:
        """`durable`: commits wait for the disk, as on a real server (bench/fleet_load.py's figures)."""
        # C collation: text sorts by code point, as SQLite's does.
        self._run("initdb", "--pgdata", str(self.data_dir), "--username", "postgres", "--auth", "trust",
                  "--encoding", "UTF8", "--locale", "C", "--no-sync", "--no-instructions")
        settings = " ".join("-c %s=%s" % (name, value) for name, value in _SETTINGS.items()
                            if not (durable and name in _NOT_DURABLE))
        for attempt in range(3):
            try:
                # -w: pg_ctl returns once the server accepts connections (it polls for that itself).
                self._run("pg_ctl", "--pgdata", str(self.data_dir), "--log", str(self.root / "server.log"), "--wait",
                          "--timeout", str(_START_TIMEOUT_S),
                          "--options", "%s -p %d -k %s" % (settings, self.port, self.socket_dir), "start")
                break
            except RuntimeError as exc:    # the free port was taken meanwhile (another session's cluster)
                if attempt == 2 or "Address already in use" not in str(exc):
                    raise
                self.port = _free_loopback_port()
        self._admin = psycopg.connect(host=str(self.socket_dir), port=self.port, user="postgres", dbname="postgres",
                                      autocommit=True)

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "--pgdata", str(self.data_dir), "--mode", "immediate", "--wait", "stop")

    def url(self, dbname: str) -> str:
        """The SQLAlchemy URL of `dbname`, through the unix socket."""
        return "postgresql+psycopg://postgres@/%s?host=%s&port=%d" % (dbname, self.socket_dir, self.port)

    def template(self, name: str, fill: Callable[[str], None]) -> str:
        """The database `name`, made once and filled by `fill(url)` (which leaves no connection open to it),
        for `database(template=name)` to copy: quicker than filling each database again."""
        assert self._admin is not None, "the server is not started"
        if name not in self._templates:
            self._admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
            try:
                fill(self.url(name))
            except BaseException:
                self._admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
                raise
            self._templates.add(name)
        return name

    @contextlib.contextmanager
    def database(self, template: str = "template0") -> Iterator[str]:
        """A new database, empty or a copy of `template`, dropped afterwards (with whatever connections a
        test left open to it)."""
        assert self._admin is not None, "the server is not started"
        name = "test_%s" % uuid.uuid4().hex[:16]
        self._admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                              sql.Identifier(template)))
        try:
            yield self.url(name)
        finally:
            self._admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _server_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise RuntimeError("the tests run as root, and initdb refuses root: the %r user that Debian's postgresql "
                           "package creates is missing" % SERVER_USER) from None


@contextlib.contextmanager
def running_postgres(*, durable: bool = False) -> Iterator[PostgresServer]:
    """A throwaway cluster, started and, at the end, stopped and deleted."""
    run_as = _server_user()
    root = Path(tempfile.mkdtemp(prefix="kiosk-postgres-"))
    try:
        if run_as is not None:
            os.chown(root, run_as.pw_uid, run_as.pw_gid)
        server = PostgresServer(find_bindir(), root, _free_loopback_port(), run_as)
        try:
            server.start(durable=durable)
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgresql: runs on the throwaway PostgreSQL (tests/postgres_server.py); "
                                       "deselect with -m 'not postgresql'")


@pytest.hookimpl(tryfirst=True)     # before -m selects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that asks for `postgres_server` itself is marked postgresql too."""
    for item in items:
        if "postgres_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgresql)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server
