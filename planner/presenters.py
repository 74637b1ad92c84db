"""Small view-models: numbers turned into what pages show (progress text, ETA, chart points)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    percent: float | None  # None: total unknown
    text: str
    eta_text: str
    growth_text: str  # table size before → after, once known


def _bytes(value: int) -> str:
    size = float(value)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} TB"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


def run_progress(run) -> Progress:
    done, total = run.rows_done, run.rows_total_estimate
    if total:
        # The total is an estimate (reltuples refined by key range): never show more than 100 %.
        percent = min(100.0, 100.0 * done / total)
        text = (
            f"{done:,} of about {total:,} rows"
            if done <= total
            else f"{done:,} rows (more than the {total:,} estimated)"
        )
    else:
        percent = None
        text = f"{done:,} rows"
    eta = "done" if run.status in run.FINISHED else _duration(run.eta_seconds)
    growth = ""
    if run.table_bytes_before and run.table_bytes_after:
        ratio = run.table_bytes_after / run.table_bytes_before
        growth = f"{_bytes(run.table_bytes_before)} → {_bytes(run.table_bytes_after)} ({ratio:.2f}×)"
    elif run.table_bytes_before:
        growth = f"{_bytes(run.table_bytes_before)} before the run"
    return Progress(percent=percent, text=text, eta_text=eta, growth_text=growth)


@dataclass(frozen=True)
class Chart:
    """A server-rendered line chart: SVG polyline points in a width × height box, plus labels."""

    points: str
    width: int
    height: int
    max_label: str
    last_label: str
    count: int


def line_chart(values: list[float], *, unit: str, width: int = 600, height: int = 120) -> Chart | None:
    """Scale values into an SVG box (y grows downward); None when there is nothing to draw."""
    if not values:
        return None
    top = max(values) or 1.0
    step = width / max(1, len(values) - 1)
    points = " ".join(
        f"{index * step:.1f},{height - (value / top) * (height - 4) - 2:.1f}" for index, value in enumerate(values)
    )
    return Chart(
        points=points,
        width=width,
        height=height,
        max_label=f"{top:,.0f} {unit}",
        last_label=f"{values[-1]:,.0f} {unit}",
        count=len(values),
    )


def batch_charts(run, limit: int = 300) -> dict[str, Chart | None]:
    """Batch duration and throughput of the last `limit` batches, oldest first."""
    batches = list(run.batches.order_by("-finished_at").values_list("duration_ms", "rows")[:limit])[::-1]
    durations = [duration for duration, _ in batches]
    throughput = [rows / (duration / 1000) if duration > 0 else 0.0 for duration, rows in batches]
    return {
        "duration": line_chart(durations, unit="ms"),
        "throughput": line_chart(throughput, unit="rows/s"),
    }


@dataclass(frozen=True)
class Signal:
    label: str
    value: str
    limit: str
    over: bool


def health_signals(run) -> list[Signal]:
    """The latest health readings of a run's table next to the limits that would hold it back."""
    from planner.pg.backfill.spec import ThrottleLimits

    health = run.health or {}
    if not health:
        return []
    given = (run.spec or {}).get("throttle") or {}
    limits = ThrottleLimits(**{k: v for k, v in given.items() if k in ThrottleLimits.__dataclass_fields__})
    signals = []
    if health.get("replicas") is None:
        signals.append(Signal("Replica lag", "not visible", "", False))
    elif not health["replicas"]:
        signals.append(Signal("Replica lag", "no replicas", "", False))
    else:
        lag = health.get("replica_lag_s") or 0.0
        limit = limits.replica_lag_s
        signals.append(
            Signal("Replica lag", f"{lag:.1f} s", f"limit {limit:g} s" if limit else "", bool(limit and lag > limit))
        )
    waiters = health.get("lock_waiters", 0)
    signals.append(
        Signal(
            "Lock waits on the table",
            str(waiters),
            f"limit {limits.lock_waiters}" if limits.lock_waiters is not None else "",
            limits.lock_waiters is not None and waiters > limits.lock_waiters,
        )
    )
    ratio = health.get("dead_tuple_ratio", 0.0)
    dead = health.get("dead_tuples", 0)
    ratio_limit = limits.dead_tuple_ratio
    signals.append(
        Signal(
            "Dead tuples",
            f"{ratio:.0%} ({dead:,})",
            f"limit {ratio_limit:.0%}" if ratio_limit else "",
            bool(ratio_limit and dead >= limits.dead_tuple_min and ratio > ratio_limit),
        )
    )
    oldest = health.get("oldest_transaction_s")
    long_limit = limits.long_transaction_s
    signals.append(
        Signal(
            "Oldest open transaction",
            f"{oldest:.0f} s" if oldest is not None else "none",
            f"limit {long_limit:g} s" if long_limit else "",
            bool(oldest is not None and long_limit and oldest > long_limit),
        )
    )
    return signals
