"""Safe DDL executor: short lock waits, retried with jittered backoff, CONCURRENTLY outside transactions.

Why: an `ALTER TABLE` waiting for its ACCESS EXCLUSIVE lock sits in the lock queue, and every later
query on the table queues behind it — a long transaction elsewhere would stall the application.
With a short `lock_timeout` the statement gives up quickly (the queue drains) and is retried after
a jittered, growing pause, so the application is never blocked longer than the lock timeout.

Statements that cannot run in a transaction block (CREATE INDEX CONCURRENTLY, VACUUM …) run one at a
time in autocommit; consecutive others run together in one transaction per step (or one each).
A retried step is replayed from its first statement: the failed attempt was rolled back whole.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psycopg
from pglast import ast
from psycopg import sql

from planner.pg.connect import DEFAULT_LOCK_TIMEOUT_MS, DEFAULT_STATEMENT_TIMEOUT_MS, connect
from planner.pg.ddl_statements import (
    Statement,
    autocommit_reason,
    is_transaction_control,
    split_statements,
)

# lock_not_available (our lock_timeout fired) and deadlock_detected (PostgreSQL chose us as the
# victim and rolled us back): in both cases nothing was changed, so trying again is safe.
RETRYABLE_SQLSTATES = frozenset({"55P03", "40P01"})


@dataclass(frozen=True)
class DdlPolicy:
    """How patient the executor is. The defaults suit a busy production table."""

    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS
    # CONCURRENTLY builds and VACUUM never block writers, but take long on big tables.
    autocommit_statement_timeout_ms: int = 6 * 3600 * 1000
    max_attempts: int = 30
    deadline_s: float = 300.0  # per step, counted from its first attempt
    backoff_initial_ms: float = 200.0
    backoff_max_ms: float = 10_000.0
    transaction_per_statement: bool = False


@dataclass
class StatementResult:
    """What happened to one statement. `waited_ms` is time lost to failed attempts and backoff."""

    index: int
    sql: str
    transactional: bool
    attempts: int = 0
    waited_ms: float = 0.0
    duration_ms: float = 0.0
    error: str | None = None
    sqlstate: str | None = None
    done: bool = False

    @property
    def ok(self) -> bool:
        return self.done and self.error is None


@dataclass
class Step:
    """Statements run together: in one transaction, or (autocommit) exactly one statement."""

    statements: list[Statement]
    transactional: bool
    results: list[StatementResult] = field(default_factory=list)


@dataclass(frozen=True)
class DdlEvent:
    """Progress for callers (audit log, UI): kind is started, retrying, invalid_index_dropped,
    succeeded or failed."""

    kind: str
    result: StatementResult
    detail: dict = field(default_factory=dict)


class DdlError(Exception):
    """Final failure of a statement; `results` covers every statement run or attempted so far."""

    def __init__(self, message: str, failed: StatementResult, results: list[StatementResult]):
        super().__init__(message)
        self.failed = failed
        self.results = results


class LockRetriesExhausted(DdlError):
    """The statement kept timing out on a lock (a long transaction holds a conflicting one)."""


class StatementFailed(DdlError):
    """PostgreSQL rejected the statement for a reason retrying cannot fix (syntax, duplicates …)."""


class UnsupportedStatement(ValueError):
    """The SQL holds something the executor refuses to run, such as BEGIN/COMMIT."""


def plan_steps(
    statements: Iterable[Statement], *, server_version_num: int | None, transaction_per_statement: bool = False
) -> list[Step]:
    """Group statements into steps: runs of transactional ones, and each autocommit one alone."""
    steps: list[Step] = []
    for statement in statements:
        if is_transaction_control(statement.node):
            raise UnsupportedStatement(
                f"{statement.text!r}: transaction control is not allowed here; the executor runs each "
                "step in its own transaction (statements that cannot, such as CONCURRENTLY, run alone)"
            )
        transactional = autocommit_reason(statement.node, server_version_num) is None
        if transactional and steps and steps[-1].transactional and not transaction_per_statement:
            steps[-1].statements.append(statement)
        else:
            steps.append(Step(statements=[statement], transactional=transactional))
    return steps


class DdlExecutor:
    """Runs statements on one autocommit connection to a target, following a DdlPolicy."""

    def __init__(
        self,
        connection: psycopg.Connection,
        policy: DdlPolicy | None = None,
        *,
        on_event: Callable[[DdlEvent], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ):
        if not connection.autocommit:
            raise ValueError("DdlExecutor needs an autocommit connection: it opens its own transactions")
        self.connection = connection
        self.policy = policy or DdlPolicy()
        self.on_event = on_event
        self._sleep = sleep
        self._rng = rng
        self.results: list[StatementResult] = []

    @property
    def server_version_num(self) -> int:
        return self.connection.info.server_version

    def plan(self, statements: str | Iterable[str | Statement]) -> list[Step]:
        """Split and group without running anything (shown before a phase starts)."""
        return plan_steps(
            _as_statements(statements),
            server_version_num=self.server_version_num,
            transaction_per_statement=self.policy.transaction_per_statement,
        )

    def run(self, statements: str | Iterable[str | Statement]) -> list[StatementResult]:
        """Run every statement in order; raise DdlError on the first final failure."""
        for step in self.plan(statements):
            self.run_step(step)
        return self.results

    def run_step(
        self, step: Step, *, before_commit: Callable[[psycopg.Connection], None] | None = None
    ) -> list[StatementResult]:
        """Run one step, retrying it whole on lock timeouts.

        `before_commit` runs inside the step's transaction after its statements (the sqlx ledger
        row goes there, so a migration and its record commit together). Autocommit steps take
        none: their statement cannot be undone, so a later failure must not make it run again.
        """
        if before_commit is not None and not step.transactional:
            raise ValueError("before_commit needs a transactional step")
        if not step.statements:
            return []
        if not step.results:
            step.results = [
                StatementResult(index=len(self.results) + offset, sql=s.text, transactional=step.transactional)
                for offset, s in enumerate(step.statements)
            ]
            self.results.extend(step.results)
        first_attempt_at = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            for result in step.results:
                result.attempts = attempt
            self._emit("started", step.results[0], attempt=attempt)
            attempt_started = time.monotonic()
            current: list[StatementResult] = [step.results[0]]
            try:
                self._attempt(step, current, before_commit)
            except psycopg.Error as error:
                failed = current[0]
                failed.waited_ms += (time.monotonic() - attempt_started) * 1000
                self._handle_failure(step, failed, error, attempt, first_attempt_at)
                continue
            for result in step.results:
                result.done = True
                self._emit("succeeded", result)
            return step.results

    def _attempt(self, step: Step, current: list[StatementResult], before_commit) -> None:
        timeout = (
            self.policy.statement_timeout_ms if step.transactional else self.policy.autocommit_statement_timeout_ms
        )
        self.connection.execute(
            "SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
            (f"{int(self.policy.lock_timeout_ms)}ms", f"{int(timeout)}ms"),
        )
        if step.transactional:
            with self.connection.transaction():
                self._execute_all(step, current)
                if before_commit is not None:
                    before_commit(self.connection)
        else:
            self._drop_invalid_index(step.statements[0], step.results[0])
            self._execute_all(step, current)

    def _execute_all(self, step: Step, current: list[StatementResult]) -> None:
        for statement, result in zip(step.statements, step.results, strict=True):
            current[0] = result
            started = time.monotonic()
            self.connection.execute(statement.text)
            result.duration_ms = (time.monotonic() - started) * 1000

    def _handle_failure(self, step: Step, failed: StatementResult, error: psycopg.Error, attempt: int, since: float):
        failed.sqlstate = error.sqlstate
        message = _first_line(error)
        if error.sqlstate not in RETRYABLE_SQLSTATES:
            failed.error = message
            self._emit("failed", failed, sqlstate=error.sqlstate)
            raise StatementFailed(
                f"statement {failed.index + 1} failed ({error.sqlstate}): {message} — in: {_short(failed.sql)}",
                failed,
                self.results,
            ) from error
        delay = self._backoff_s(attempt)
        elapsed = time.monotonic() - since
        if attempt >= self.policy.max_attempts or elapsed + delay > self.policy.deadline_s:
            failed.error = message
            self._emit("failed", failed, sqlstate=error.sqlstate)
            raise LockRetriesExhausted(
                f"statement {failed.index + 1} gave up after {attempt} attempts in {elapsed:.1f} s, each "
                f"waiting at most {self.policy.lock_timeout_ms} ms for its lock ({message}); a long-running "
                f"transaction holds a conflicting lock (see pg_stat_activity) — in: {_short(failed.sql)}",
                failed,
                self.results,
            ) from error
        self._emit("retrying", failed, attempt=attempt, delay_ms=round(delay * 1000), sqlstate=error.sqlstate)
        self._sleep(delay)
        failed.waited_ms += delay * 1000

    def _backoff_s(self, attempt: int) -> float:
        # "Equal jitter": always wait half the exponential step, randomise the other half, so that
        # several planners retrying against the same blocker do not fall into lock-step.
        ceiling = min(self.policy.backoff_max_ms, self.policy.backoff_initial_ms * 2 ** (attempt - 1))
        return (ceiling / 2 + self._rng() * ceiling / 2) / 1000

    def _drop_invalid_index(self, statement: Statement, result: StatementResult) -> None:
        """A failed CREATE INDEX CONCURRENTLY leaves an INVALID index behind; drop it before (re)trying.

        Only an INVALID index of exactly that name on that table is dropped, never a valid one.
        """
        node = statement.node
        if not (isinstance(node, ast.IndexStmt) and node.concurrent and node.idxname):
            return
        relation = node.relation
        table = sql.Identifier(*(part for part in (relation.schemaname, relation.relname) if part))
        row = self.connection.execute(
            """SELECT n.nspname
                 FROM pg_index i
                 JOIN pg_class c ON c.oid = i.indexrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE i.indrelid = to_regclass(%s) AND c.relname = %s AND NOT i.indisvalid""",
            (table.as_string(self.connection), node.idxname),
        ).fetchone()
        if row is None:
            return
        self.connection.execute(
            sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(row[0], node.idxname))
        )
        self._emit("invalid_index_dropped", result, schema=row[0], index=node.idxname)

    def _emit(self, kind: str, result: StatementResult, **detail) -> None:
        if self.on_event is not None:
            self.on_event(DdlEvent(kind=kind, result=result, detail=detail))


def execute_sql(
    conninfo: str,
    statements: str | Iterable[str],
    policy: DdlPolicy | None = None,
    *,
    on_event: Callable[[DdlEvent], None] | None = None,
) -> list[StatementResult]:
    """Open a connection to a target, run the statements safely, close it."""
    policy = policy or DdlPolicy()
    with connect(
        conninfo, lock_timeout_ms=policy.lock_timeout_ms, statement_timeout_ms=policy.statement_timeout_ms
    ) as connection:
        return DdlExecutor(connection, policy, on_event=on_event).run(statements)


def _as_statements(statements: str | Iterable[str | Statement]) -> list[Statement]:
    if isinstance(statements, str):
        return split_statements(statements)
    result: list[Statement] = []
    for item in statements:
        result.extend([item] if isinstance(item, Statement) else split_statements(item))
    return result


def _first_line(error: psycopg.Error) -> str:
    diag = getattr(error, "diag", None)
    primary = diag.message_primary if diag is not None else None
    return primary or (str(error).strip().splitlines() or [type(error).__name__])[0]


def _short(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
