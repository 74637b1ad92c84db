"""A new plan from a recipe: pick the intent and the target, fill the recipe's generated form."""

from __future__ import annotations

import psycopg
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import redirect, render

from planner import recipes
from planner.credentials import CredentialsError
from planner.models import TargetDatabase
from planner.services.recipes import create_plan_from_recipe

# Recipes whose parameters a plain form can hold; free-form phases are written on the plan page.
FORM_RECIPES = (
    "add_column",
    "add_index",
    "add_foreign_key",
    "add_unique",
    "rename_column",
    "change_column_type",
    "drop_column",
    "drop_table",
)


@permission_required("planner.add_plan", raise_exception=True)
def plan_new(request):
    choices = [recipes.get(name) for name in FORM_RECIPES]
    targets = TargetDatabase.objects.all()
    recipe_name = request.POST.get("recipe") or request.GET.get("recipe") or ""
    recipe = recipes.RECIPES.get(recipe_name) if recipe_name in FORM_RECIPES else None
    context = {"recipes": choices, "targets": targets, "recipe": recipe, "values": {}, "error": None}
    if recipe is None or request.method != "POST":
        context["values"] = {"target": request.GET.get("target", "")}
        return render(request, "planner/plan_new.html", context)

    fields = recipe.form()
    values = {field["name"]: request.POST.get(field["name"], "") for field in fields}
    params = {}
    for field in fields:
        raw = values[field["name"]].strip()
        if field["type"] == "bool":
            params[field["name"]] = "true" if request.POST.get(field["name"]) else "false"
        elif raw:
            params[field["name"]] = raw
    context["values"] = {**values, "target": request.POST.get("target", "")}
    target = targets.filter(pk=request.POST.get("target") or 0).first()
    try:
        if target is None:
            raise recipes.RecipeError("target", "choose the target database")
        plan = create_plan_from_recipe(request.user, target=target, recipe=recipe.name, params=params)
    except recipes.RecipeError as error:
        context["error"] = error
        return render(request, "planner/plan_new.html", context, status=400)
    except (psycopg.Error, CredentialsError) as error:
        context["error"] = recipes.RecipeError("target", f"cannot read the schema of {target.name}: {error}")
        return render(request, "planner/plan_new.html", context, status=400)
    messages.success(request, f"Plan created from “{recipe.title}” with {plan.phases.count()} phases.")
    return redirect("plan-detail", plan_id=plan.pk)
