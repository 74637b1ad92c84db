"""Recipes: intent → a plan of phases (expand → backfill → contract) read from the target's schema.

    base.py      Recipe, Param, PhaseDraft, PlanDraft, RecipeError (the framework)
    sqltext.py   identifiers by psycopg.sql, user expressions re-emitted by pglast
    lookup.py    finding tables, columns and unique keys in a TargetSchema
    runbook.py   duration estimates, gates, validation queries
    sync.py      sync triggers, rollback guards and column checks shared by column-moving recipes
    <recipe>.py  one module per recipe, each with a RECIPE

The registry below lists them in the order a form shows them.
"""

from __future__ import annotations

from planner.recipes import (
    add_column,
    add_foreign_key,
    add_index,
    add_unique,
    change_column_type,
    change_primary_key,
    drop_column,
    drop_table,
    free_form,
    rename_column,
    soft_delete_to_events,
    split_json_column,
)
from planner.recipes.base import PhaseDraft, PlanDraft, Recipe, RecipeError

RECIPES: dict[str, Recipe] = {
    module.RECIPE.name: module.RECIPE
    for module in (
        add_column,
        add_index,
        add_foreign_key,
        add_unique,
        rename_column,
        change_column_type,
        change_primary_key,
        drop_column,
        drop_table,
        split_json_column,
        soft_delete_to_events,
        free_form,
    )
}


def get(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise RecipeError("recipe", f"unknown recipe {name!r}; known: {', '.join(RECIPES)}") from None


def all_recipes() -> list[Recipe]:
    return list(RECIPES.values())


__all__ = ["RECIPES", "PhaseDraft", "PlanDraft", "Recipe", "RecipeError", "all_recipes", "get"]
