"""Supervising the child processes of `manage.py up`: web server, Celery worker, Celery beat.

Children run in their own sessions so a terminal's Ctrl-C reaches only `up`, which then stops
them in order: SIGTERM to each child's whole process group (gunicorn workers and Celery pool
processes included), a grace period, then SIGKILL for anything left. No Django here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import psutil


def _terminate_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM if `up` itself dies (even by kill -9)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None


@dataclass
class Supervisor:
    env: dict[str, str]
    children: list[Child] = field(default_factory=list)
    stop_requested: bool = False

    def add(self, name: str, argv: list[str]) -> None:
        self.children.append(Child(name, argv))

    def start_all(self) -> None:
        for child in self.children:
            child.process = subprocess.Popen(
                child.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_terminate_with_parent,
            )

    def install_signal_handlers(self) -> None:
        def request_stop(signum, frame):
            self.stop_requested = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

    def wait(self, poll_seconds: float = 0.2) -> Child | None:
        """Block until a stop is requested (returns None) or a child exits (returns that child)."""
        while not self.stop_requested:
            for child in self.children:
                if child.process is not None and child.process.poll() is not None:
                    return child
            time.sleep(poll_seconds)
        return None

    def stop_all(self, grace_seconds: float = 20) -> None:
        """Stop every child and all of its descendants; nothing survives this call."""
        members: list[psutil.Process] = []
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                parent = psutil.Process(child.process.pid)
                members.extend([parent, *parent.children(recursive=True)])
            except psutil.NoSuchProcess:
                pass
            try:
                os.killpg(child.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_seconds
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        _, alive = psutil.wait_procs(members, timeout=max(0.1, deadline - time.monotonic()))
        for process in alive:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=5)
