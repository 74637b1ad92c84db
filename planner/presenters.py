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
