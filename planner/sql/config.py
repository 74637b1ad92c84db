"""Analyzer settings: which rules run, what counts as a tiny table, the target PostgreSQL version.

Read from `planner-analyze.toml` (top-level keys) or from `[tool.planner.analyze]` in pyproject.toml:

    disable = ["prefer-text-field"]      # never report these rules
    include = ["prefer-bigint-over-int"]  # turn on rules that are off by default
    pg_version = 15
    tiny_table_rows = 10000               # below both limits, warnings are downgraded to info
    tiny_table_bytes = 10485760
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

SUPPORTED_VERSIONS = range(11, 19)


class ConfigError(ValueError):
    """The configuration file is unreadable or has a bad value."""


@dataclass
class AnalyzeConfig:
    disable: set[str] = field(default_factory=set)
    include: set[str] = field(default_factory=set)
    pg_version: int | None = None
    tiny_table_rows: int = 10_000
    tiny_table_bytes: int = 10 * 1024 * 1024

    def enabled(self, rule_name: str, default: bool) -> bool:
        if rule_name in self.disable:
            return False
        return default or rule_name in self.include

    @classmethod
    def from_mapping(cls, data: dict, source: str = "configuration") -> AnalyzeConfig:
        known = {"disable", "include", "pg_version", "tiny_table_rows", "tiny_table_bytes"}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"{source}: unknown setting(s) {', '.join(sorted(unknown))}")
        config = cls()
        for key in ("disable", "include"):
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{source}: {key} must be a list of rule names")
            setattr(config, key, set(value))
        for key in ("pg_version", "tiny_table_rows", "tiny_table_bytes"):
            if key in data:
                if not isinstance(data[key], int) or isinstance(data[key], bool) or data[key] < 0:
                    raise ConfigError(f"{source}: {key} must be a non-negative integer")
                setattr(config, key, data[key])
        if config.pg_version is not None and config.pg_version not in SUPPORTED_VERSIONS:
            raise ConfigError(f"{source}: pg_version must be between 11 and 18")
        from planner.sql.rules import all_rules

        unknown_rules = (config.disable | config.include) - set(all_rules())
        if unknown_rules:
            raise ConfigError(f"{source}: unknown rule(s) {', '.join(sorted(unknown_rules))}")
        return config

    @classmethod
    def load(cls, path: str | Path) -> AnalyzeConfig:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"cannot read {path}: {error}") from error
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: invalid TOML: {error}") from error
        if path.name == "pyproject.toml":
            data = data.get("tool", {}).get("planner", {}).get("analyze", {})
        else:
            data = data.get("analyze", data)
        return cls.from_mapping(data, str(path))

    @classmethod
    def discover(cls, directory: str | Path = ".") -> AnalyzeConfig:
        """planner-analyze.toml, else pyproject.toml's [tool.planner.analyze], else defaults."""
        directory = Path(directory)
        own = directory / "planner-analyze.toml"
        if own.is_file():
            return cls.load(own)
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            try:
                data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                return cls()
            if "analyze" in data.get("tool", {}).get("planner", {}):
                return cls.load(pyproject)
        return cls()
