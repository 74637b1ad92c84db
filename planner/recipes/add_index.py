"""Add an index without blocking writes: CREATE INDEX CONCURRENTLY, alone in its own phase.

Kinds: btree (optionally partial, optionally covering with INCLUDE), or GIN full-text over one or
more text columns. A failed concurrent build leaves an INVALID index: the safe executor drops it
before retrying, and the down SQL (DROP INDEX CONCURRENTLY IF EXISTS) removes it either way.
"""

from __future__ import annotations

from psycopg import sql

from planner.recipes.base import Param, PhaseDraft, PlanDraft, Recipe, RecipeError
from planner.recipes.lookup import find_column, find_table, require_new_relation
from planner.recipes.runbook import INDEX_ROWS_PER_SECOND, estimate, index_valid, runbook, validation
from planner.recipes.sqltext import as_text, derived_name, ident, literal, no_transaction, predicate, render

METHODS = ("btree", "fulltext")
TEXT_TYPES = ("text", "character varying", "character", "citext")

PARAMS = (
    Param("table", "Table", "identifier"),
    Param("columns", "Columns", "identifiers", help="Comma-separated key columns, in index order."),
    Param(
        "method",
        "Kind",
        "choice",
        required=False,
        default="btree",
        choices=METHODS,
        help="btree, or fulltext: a GIN index over to_tsvector of the columns.",
    ),
    Param("name", "Index name", "identifier", required=False, help="Default: <table>_<columns>_idx."),
    Param("where", "Only rows where", "predicate", required=False, help="Partial index condition."),
    Param(
        "include",
        "Include columns",
        "identifiers",
        required=False,
        help="Covering index: extra columns stored in the index (btree only).",
    ),
    Param(
        "language",
        "Text search configuration",
        "text",
        required=False,
        default="english",
        help="For fulltext: the configuration passed to to_tsvector.",
    ),
)


def _name(ref, params: dict) -> str:
    suffix = "fts_idx" if params["method"] == "fulltext" else "idx"
    return params["name"] or derived_name(ref.name, *params["columns"], suffix=suffix)


def validate(schema, params: dict) -> None:
    ref = find_table(schema, params["table"])
    columns = [find_column(ref, name, "columns") for name in params["columns"]]
    for name in params["include"] or ():
        find_column(ref, name, "include")
    require_new_relation(schema, ref.schema, _name(ref, params), "name")
    if params["where"]:
        predicate(params["where"], "where")
    if params["method"] == "fulltext":
        if params["include"]:
            raise RecipeError("include", "is for btree indexes only")
        for column in columns:
            if column.type.split("(")[0] not in TEXT_TYPES:
                raise RecipeError("columns", f"column {column.name!r} is {column.type}, not text: no full-text index")
        if not params["language"] or not params["language"].replace("_", "").isalnum():
            raise RecipeError("language", f"{params['language']!r} is not a text search configuration name")


def index_statement(ref, params: dict, name: str, *, unique: bool = False) -> str:
    """The CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS statement (shared with add_unique)."""
    if params.get("method") == "fulltext":
        document = sql.SQL(" || ' ' || ").join(
            sql.SQL("coalesce({}, '')").format(ident(column)) for column in params["columns"]
        )
        keys = sql.SQL("USING gin (to_tsvector({}::regconfig, {}))").format(literal(params["language"]), document)
    else:
        keys = sql.SQL("({})").format(sql.SQL(", ").join(ident(column) for column in params["columns"]))
    statement = sql.SQL("CREATE {unique}INDEX CONCURRENTLY IF NOT EXISTS {i} ON {t} {keys}").format(
        unique=sql.SQL("UNIQUE " if unique else ""), i=ident(name), t=ref.ident, keys=keys
    )
    if params.get("include"):
        statement += sql.SQL(" INCLUDE ({})").format(sql.SQL(", ").join(ident(c) for c in params["include"]))
    if params.get("where"):
        statement += sql.SQL(" WHERE {}").format(predicate(params["where"], "where"))
    return as_text(statement)


def index_phase(ref, name: str, statement: str, *, what: str) -> PhaseDraft:
    regclass = as_text(ident(ref.schema, name))
    seconds = estimate(ref.rows, INDEX_ROWS_PER_SECOND)
    return PhaseDraft(
        kind="expand",
        name=f"Build {what} {name} concurrently",
        up_sql=no_transaction(statement),
        down_sql=no_transaction(render("DROP INDEX CONCURRENTLY IF EXISTS {i}", i=ident(ref.schema, name))),
        validations=[validation(f"{name} is valid", index_valid(regclass), True)],
        runbook=runbook(
            rollback="Run the down SQL: DROP INDEX CONCURRENTLY IF EXISTS removes the index, valid or INVALID "
            "(a failed build leaves an INVALID one; the executor also drops it before a retry).",
            testing=[
                "Writes to the table continue during the build (SHARE UPDATE EXCLUSIVE only).",
                f"pg_index.indisvalid is true for {name} afterwards.",
                "EXPLAIN of the query the index is for shows it being used.",
            ],
            seconds=seconds,
            rows=ref.rows,
            notes=["Runs outside a transaction; it waits for transactions older than itself to finish."],
        ),
    )


def build(schema, params: dict) -> PlanDraft:
    ref = find_table(schema, params["table"])
    name = _name(ref, params)
    what = "full-text index" if params["method"] == "fulltext" else "index"
    phase = index_phase(ref, name, index_statement(ref, params, name), what=what)
    title = f"Add {what} {name} on {ref.key} ({', '.join(params['columns'])})"
    return PlanDraft(title=title, description=title + ", without blocking writes.", phases=[phase])


RECIPE = Recipe(
    name="add_index",
    title="Add an index without blocking writes",
    description="CREATE INDEX CONCURRENTLY (btree, partial, covering, or GIN full-text) in its own phase, "
    "with INVALID-index cleanup on rollback.",
    params=PARAMS,
    validate=validate,
    build=build,
)
