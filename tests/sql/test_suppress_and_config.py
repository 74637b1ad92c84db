"""Inline suppressions and the configuration file."""

from __future__ import annotations

import pytest

from planner.sql.analysis import analyze_text
from planner.sql.config import AnalyzeConfig, ConfigError
from tests.sql.helpers import rules

INDEX = "create index on t (c);"


def test_a_comment_silences_named_rules_for_the_next_statement_only():
    sql = f"-- planner-ignore require-concurrent-index-creation\n{INDEX}\n{INDEX}"
    report = analyze_text(sql)
    assert "require-concurrent-index-creation" not in {f.rule for f in report.statements[0].findings}
    assert "require-concurrent-index-creation" in {f.rule for f in report.statements[1].findings}


def test_several_rules_and_block_comments_work():
    sql = f"/* planner-ignore require-concurrent-index-creation, require-timeout-settings */ {INDEX}"
    assert not {"require-concurrent-index-creation", "require-timeout-settings"} & rules(sql)


def test_a_bare_ignore_silences_everything():
    assert rules(f"-- planner-ignore\n{INDEX}") == set()


def test_file_level_ignores_apply_everywhere():
    sql = f"{INDEX}\n{INDEX}\n-- planner-ignore-file require-concurrent-index-creation\n"
    assert "require-concurrent-index-creation" not in rules(sql)
    assert "require-timeout-settings" in rules(sql)


def test_suppression_does_not_change_the_lock_model():
    statement = analyze_text(f"-- planner-ignore\n{INDEX}").statements[0]
    assert statement.blocking is True and statement.findings == []


def test_config_disables_and_includes_rules():
    config = AnalyzeConfig.from_mapping({"disable": ["require-timeout-settings"], "include": ["prefer-text-field"]})
    found = rules("create table t (name varchar(10)); alter table u add column a int;", config=config)
    assert "prefer-text-field" in found and "require-timeout-settings" not in found


def test_config_files_are_read(tmp_path):
    own = tmp_path / "planner-analyze.toml"
    own.write_text('disable = ["ban-drop-column"]\npg_version = 12\ntiny_table_rows = 5\n')
    config = AnalyzeConfig.load(own)
    assert config.disable == {"ban-drop-column"} and config.pg_version == 12 and config.tiny_table_rows == 5
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.planner.analyze]\ninclude = ["prefer-text-field"]\n')
    assert AnalyzeConfig.load(pyproject).include == {"prefer-text-field"}
    assert AnalyzeConfig.discover(tmp_path).disable == {"ban-drop-column"}


def test_config_pg_version_is_used():
    config = AnalyzeConfig(pg_version=11)
    assert analyze_text("alter table t alter column c set not null", config=config).findings()[0].fix is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('disable = ["no-such-rule"]', "unknown rule"),
        ("pg_version = 9", "between 11 and 18"),
        ("colour = 1", "unknown setting"),
        ("disable = 3", "list of rule names"),
        ("this is not toml", "invalid TOML"),
    ],
)
def test_bad_configuration_is_reported(tmp_path, content, message):
    path = tmp_path / "planner-analyze.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        AnalyzeConfig.load(path)
