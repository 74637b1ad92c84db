"""Compatibility fixtures: the recipes' shop database and plan drivers, and the committed .sqlx samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.recipes.conftest import driver_for, shop  # noqa: F401 - fixtures shared with the recipe tests

SAMPLES = Path(__file__).parent / "samples"


@pytest.fixture
def sample_dir():
    """sample_dir("app-v1") → the committed .sqlx directory of that application version."""
    return lambda version: SAMPLES / version / ".sqlx"
