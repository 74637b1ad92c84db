"""The recipe framework: declared parameters, a clear error per bad field, and the plan a recipe drafts.

A recipe is a module with a `RECIPE = Recipe(...)`: a name, a title, a description, its parameters
(enough to generate a form), `validate(schema, params)` and `build(schema, params) -> PlanDraft`.
`Recipe.draft` runs them in order: parameters are coerced and checked first, then against the
target's schema (a `planner.pg.introspect.TargetSchema`), then the plan is drafted. Nothing is
written anywhere: the service `planner.services.recipes.create_plan_from_recipe` stores the draft.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

PARAM_TYPES = ("text", "identifier", "type", "expression", "predicate", "identifiers", "bool", "choice", "phases")


class RecipeError(ValueError):
    """A parameter does not fit (or does not fit the schema); `field` names it for the form."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Param:
    """One form field. `identifiers` is a comma-separated list; `phases` a list of phase dicts."""

    name: str
    label: str
    type: str = "text"
    required: bool = True
    help: str = ""
    default: object = None
    choices: tuple[str, ...] = ()

    def coerce(self, value):
        """The value in its Python type, or RecipeError naming this field."""
        if self.type == "bool":
            if isinstance(value, bool):
                return value
            if str(value).strip().lower() in ("true", "1", "yes", "on"):
                return True
            if str(value).strip().lower() in ("false", "0", "no", "off", ""):
                return False
            raise RecipeError(self.name, f"must be true or false, not {value!r}")
        if self.type == "identifiers":
            parts = value if isinstance(value, list | tuple) else str(value).split(",")
            names = [str(part).strip() for part in parts if str(part).strip()]
            if not names:
                raise RecipeError(self.name, "names no column")
            if len(set(names)) != len(names):
                raise RecipeError(self.name, "names a column twice")
            return tuple(names)
        if self.type == "phases":
            if not isinstance(value, list | tuple) or not value:
                raise RecipeError(self.name, "must be a non-empty list of phases")
            return list(value)
        if not isinstance(value, str):
            raise RecipeError(self.name, f"must be text, not {type(value).__name__}")
        value = value.strip()
        if self.type == "choice" and value not in self.choices:
            raise RecipeError(self.name, f"must be one of {', '.join(self.choices)}, not {value!r}")
        return value


@dataclass
class PhaseDraft:
    """One phase as `planner.services.plans.create_plan` takes it."""

    kind: str
    name: str
    up_sql: str = ""
    down_sql: str = ""
    backfill_spec: dict | None = None
    validations: list[dict] = field(default_factory=list)
    runbook: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "name": self.name,
            "up_sql": self.up_sql,
            "down_sql": self.down_sql,
            "backfill_spec": self.backfill_spec,
            "validations": self.validations,
            "runbook": self.runbook,
        }


@dataclass
class PlanDraft:
    title: str
    description: str
    phases: list[PhaseDraft]
    high_risk: bool = False


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    description: str
    params: tuple[Param, ...]
    validate: Callable[[object, dict], None]
    build: Callable[[object, dict], PlanDraft]

    def clean(self, raw: dict) -> dict:
        """Coerce the raw values (form or JSON) to the declared types; unknown or missing ones are errors."""
        known = {param.name for param in self.params}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise RecipeError(unknown[0], f"is not a parameter of recipe {self.name}")
        cleaned = {}
        for param in self.params:
            value = raw.get(param.name)
            if value is None or (isinstance(value, str) and not value.strip()):
                if param.required:
                    raise RecipeError(param.name, "is required")
                cleaned[param.name] = param.default
            else:
                cleaned[param.name] = param.coerce(value)
        return cleaned

    def draft(self, schema, raw: dict) -> PlanDraft:
        """Clean, validate against the schema, build. Raises RecipeError before building anything."""
        params = self.clean(raw)
        self.validate(schema, params)
        return self.build(schema, params)

    def form(self) -> list[dict]:
        """The parameters as plain data, for a generated form or an API."""
        return [
            {
                "name": p.name,
                "label": p.label,
                "type": p.type,
                "required": p.required,
                "help": p.help,
                "default": p.default,
                "choices": list(p.choices),
            }
            for p in self.params
        ]
