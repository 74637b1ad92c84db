"""`manage.py up`: everything the planner needs, in one command, stopped cleanly by Ctrl-C/SIGTERM."""

from __future__ import annotations

import os
import sys

import psycopg
import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from planner.embedded import EmbeddedPostgres, EmbeddedRedis, port_is_free
from planner.launcher import Supervisor
from planner.services import setup


class Command(BaseCommand):
    help = "Start the planner: store and broker (embedded when no URL is set), web server, worker and beat."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="web server port (default 8000)")
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
        parser.add_argument("--worker-concurrency", type=int, default=2, help="Celery worker processes")

    def handle(self, *args, **options):
        host, port = options["host"], options["port"]
        if not 0 < port < 65536:
            raise CommandError(f"--port {port} is not a valid port: use 1-65535")
        if not port_is_free(port, host):
            raise CommandError(f"port {port} on {host} is already in use: choose another with --port N")

        owned = []  # embedded servers this command started, stopped last
        supervisor = Supervisor(env={})
        supervisor.install_signal_handlers()
        try:
            store_url = self._start_store(owned)
            broker_url = self._start_broker(owned)
            self._prepare_store()
            supervisor.env = self._child_env(store_url, broker_url, host)
            python = sys.executable
            supervisor.add(
                "web",
                [
                    python,
                    "-m",
                    "gunicorn",
                    "planner.wsgi:application",
                    "--bind",
                    f"{host}:{port}",
                    "--workers",
                    str(options["web_workers"]),
                    "--access-logfile",
                    "-",
                    "--graceful-timeout",
                    "10",
                    "--no-control-socket",
                ],
            )
            supervisor.add(
                "worker",
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "planner",
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    str(options["worker_concurrency"]),
                    "--hostname",
                    f"planner-{port}@%h",
                ],
            )
            supervisor.add(
                "beat",
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "planner",
                    "beat",
                    "--loglevel",
                    "INFO",
                    "--schedule",
                    str(settings.DATA_ROOT / "celerybeat-schedule"),
                ],
            )
            if supervisor.stop_requested:
                return
            supervisor.start_all()
            self.stdout.write(self.style.SUCCESS(f"Planner is running at http://{host}:{port}/"), ending="\n")
            self.stdout.write("Press Ctrl-C to stop everything.")
            self.stdout.flush()
            exited = supervisor.wait()
            if exited is not None:
                self.stderr.write(f"{exited.name} exited with code {exited.process.returncode}; stopping everything.")
        finally:
            supervisor.stop_all()
            connection.close()
            for server in reversed(owned):
                server.stop()
            self.stdout.write("Stopped.")
        if supervisor.stop_requested:
            return
        sys.exit(1)

    def _start_store(self, owned: list) -> str:
        if settings.EMBEDDED_STORE:
            server = EmbeddedPostgres(settings.DATA_ROOT)
            if server.running_pid() is None:
                self.stdout.write(f"Starting embedded PostgreSQL (data in {server.data_dir}) …")
                server.start()
                owned.append(server)
            return server.url(settings.DATABASES["default"]["NAME"])
        try:
            connection.ensure_connection()
        except Exception as error:  # noqa: BLE001 - any failure here is reported as one line
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise CommandError(
                f"DATABASE_URL: cannot connect to the planner's store ({reason}); check the URL"
            ) from None
        return settings.DATABASE_URL

    def _start_broker(self, owned: list) -> str:
        if settings.EMBEDDED_BROKER:
            server = EmbeddedRedis(settings.DATA_ROOT)
            if server.running_pid() is None:
                self.stdout.write("Starting embedded Redis …")
                server.start()
                owned.append(server)
            return server.url()
        try:
            redis.Redis.from_url(settings.BROKER_URL, socket_connect_timeout=3).ping()
        except redis.RedisError as error:
            raise CommandError(
                f"REDIS_URL: cannot connect to Redis ({error}); check the URL, or unset it to use the embedded Redis"
            ) from None
        return settings.BROKER_URL

    def _prepare_store(self) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        created, password = setup.ensure_admin()
        if settings.PLANNER_DEMO:
            self.stdout.write("Preparing the demo target database and plan …")
            try:
                setup.ensure_demo()
            except psycopg.Error as error:
                self.stderr.write(f"Demo data could not be created ({error}); continuing without it.")
        if password:
            self.stdout.write(self.style.WARNING(f"Log in as admin with password: {password}"))
            self.stdout.write("This password is shown only once; change it with: python manage.py changepassword admin")
        elif created:
            self.stdout.write("Log in as admin with the password from PLANNER_ADMIN_PASSWORD.")
        else:
            self.stdout.write("Log in with your account (forgot it? python manage.py changepassword admin)")

    def _child_env(self, store_url: str, broker_url: str, host: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=store_url,
            REDIS_URL=broker_url,
            SECRET_KEY=settings.SECRET_KEY,
            PLANNER_CREDENTIALS_KEY=settings.CREDENTIALS_KEY,
            PLANNER_DATA_DIR=str(settings.DATA_ROOT),
            ALLOWED_HOSTS=",".join(sorted({*settings.ALLOWED_HOSTS, host})),
            SECURE_COOKIES="true" if settings.SESSION_COOKIE_SECURE else "false",
            DEBUG="true" if settings.DEBUG else "false",
            STATIC_ROOT=str(settings.STATIC_ROOT),
        )
        return env
