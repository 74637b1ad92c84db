"""`manage.py up` end to end: fresh data folder, free port, log in over HTTP, SIGTERM, nothing left."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest

from planner.embedded import free_port

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh laptop: no URLs, no secrets, only our data folder."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "PLANNER_CREDENTIALS_KEY", "PLANNER_DEMO"}
    }
    env.update(PLANNER_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", **extra)
    return env


def wait_for_line(process: subprocess.Popen, pattern: str, timeout: float, seen: list[str]) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"no line matching {pattern!r} within {timeout}s; output:\n{''.join(seen)}")


class Browser:
    """Just enough of a browser: cookies, CSRF token, form posts."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def get(self, path: str) -> tuple[int, str, str]:
        with self.opener.open(self.base_url + path, timeout=30) as response:
            return response.status, response.geturl(), response.read().decode()

    def post_form(self, path: str, fields: dict[str, str]) -> tuple[int, str, str]:
        token = next(c.value for c in self.cookies if c.name == "csrftoken")
        data = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(self.base_url + path, data=data, headers={"Referer": self.base_url + path})
        with self.opener.open(request, timeout=30) as response:
            return response.status, response.geturl(), response.read().decode()


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def test_up_serves_the_demo_plan_and_stops_everything_on_sigterm(tmp_path):
    port = free_port()
    env = clean_env(
        tmp_path / "data",
        PLANNER_ADMIN_PASSWORD="e2e-admin-pass-123",
        PLANNER_DEMO_USERS="2000",
        PLANNER_DEMO_ORDERS="5000",
    )
    process = subprocess.Popen(
        [sys.executable, "manage.py", "up", "--port", str(port), "--web-workers", "1", "--worker-concurrency", "1"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        url = wait_for_line(process, r"running at (http://\S+)", 120, seen).group(1)
        browser = Browser(url.rstrip("/"))
        deadline = time.monotonic() + 30
        while True:
            try:
                status, final_url, body = browser.get("/")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert "/login/" in final_url
        status, final_url, body = browser.post_form(
            "/login/?next=/", {"username": "admin", "password": "e2e-admin-pass-123", "next": "/"}
        )
        assert status == 200 and "/login/" not in final_url, body[:500]
        assert "Add email verification to users" in body

        # Everything `up` started: its child processes and the embedded servers (own sessions).
        started = descendants(process.pid)
        postgres_pid = int((tmp_path / "data" / "postgres" / "postmaster.pid").read_text().splitlines()[0])
        redis_pid = int((tmp_path / "data" / "redis" / "redis.pid").read_text().strip())
        started += [psutil.Process(postgres_pid), *descendants(postgres_pid), psutil.Process(redis_pid)]
        names = {p.name() for p in started}
        assert any("postgres" in n for n in names) and any("redis" in n for n in names)
        assert sum("celery" in " ".join(p.cmdline()) for p in started if p.is_running()) >= 2  # worker and beat

        process.send_signal(signal.SIGTERM)
        remaining_output, _ = process.communicate(timeout=60)
        seen.append(remaining_output)
        assert process.returncode == 0, "".join(seen)
        _, alive = psutil.wait_procs(started, timeout=10)
        assert alive == [], f"left behind: {[(p.pid, p.name()) for p in alive]}"
    finally:
        if process.poll() is None:
            process.kill()


def test_up_refuses_a_port_in_use(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "manage.py", "up", "--port", str(port)],
            cwd=REPO_ROOT,
            env=clean_env(tmp_path / "data"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert f"port {port}" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "data" / "postgres").exists(), "nothing started for a bad port"


def test_up_reports_an_unreachable_redis(tmp_path):
    port = free_port()
    result = subprocess.run(
        [sys.executable, "manage.py", "up", "--port", str(free_port())],
        cwd=REPO_ROOT,
        env=clean_env(tmp_path / "data", REDIS_URL=f"redis://127.0.0.1:{port}/0"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "REDIS_URL" in result.stderr and "cannot connect" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "postgres" / "postmaster.pid").exists(), "embedded PostgreSQL was stopped"


def test_children_stop_when_up_itself_is_killed(tmp_path):
    """Even kill -9 of `up` (no chance to clean up) leaves no web server or Celery process behind.

    The embedded servers are left running on purpose: the next `up` reuses them and stops them
    cleanly on its own Ctrl-C, so nothing ever kills PostgreSQL or Redis mid-write.
    """
    port = free_port()
    env = clean_env(tmp_path / "data", PLANNER_ADMIN_PASSWORD="e2e-admin-pass-123", PLANNER_DEMO="false")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "up", "--port", str(port), "--web-workers", "1", "--worker-concurrency", "1"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        wait_for_line(process, r"running at (http://\S+)", 120, seen)
        children = [p for p in descendants(process.pid) if p.name() not in ("redis-server", "postgres")]
        assert any("celery" in " ".join(p.cmdline()) for p in children)
        process.kill()
        process.wait(timeout=10)
        _, alive = psutil.wait_procs(children, timeout=30)
        assert alive == [], f"left behind: {[(p.pid, p.name()) for p in alive]}"
    finally:
        if process.poll() is None:
            process.kill()
        from planner.embedded import EmbeddedPostgres, EmbeddedRedis

        # The embedded servers are detached on purpose (data safety); stop them for the next test.
        EmbeddedRedis(tmp_path / "data").stop()
        EmbeddedPostgres(tmp_path / "data").stop()
