"""Creating a plan from a recipe: read the target's schema, draft the phases, store them — or nothing.

The schema is read and the draft made before the store's transaction opens, so a bad parameter
(RecipeError naming the field) or an unreachable target leaves no Plan row behind.
"""

from __future__ import annotations

from django.db import transaction

from planner.models import Plan, TargetDatabase
from planner.services import audit
from planner.services.permissions import require
from planner.services.plans import create_plan


def draft_plan(target: TargetDatabase, recipe_name: str, params: dict, *, schema=None):
    """The PlanDraft a recipe makes for this target (no permission needed: nothing is written)."""
    from planner import recipes
    from planner.pg.introspect import introspect

    recipe = recipes.get(recipe_name)
    schema = schema if schema is not None else introspect(target.conninfo())
    return recipe.draft(schema, params)


def create_plan_from_recipe(actor, *, target: TargetDatabase, recipe: str, params: dict, schema=None) -> Plan:
    """Draft with `recipe` against the target's live schema and create the plan, in one transaction."""
    require(actor, "add_plan")
    draft = draft_plan(target, recipe, params, schema=schema)
    with transaction.atomic():
        plan = create_plan(
            actor,
            title=draft.title[:200],
            target=target,
            description=draft.description,
            high_risk=draft.high_risk,
            phases=[phase.as_dict() for phase in draft.phases],
        )
        plan.recipe, plan.recipe_params = recipe, params
        plan.save(update_fields=["recipe", "recipe_params", "updated_at"])
        audit.record(actor, "plan.drafted_from_recipe", plan, recipe=recipe, phases=len(draft.phases))
    return plan
