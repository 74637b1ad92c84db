"""Duration estimates from catalog sizes: how long a statement holds its locks on the target.

A rewrite copies the heap and rebuilds every index; a scan reads the heap once. Throughput comes
from the catalog (calibrated on the target server when planner/pg fills it, defaults otherwise).
"""

from __future__ import annotations

from planner.sql.catalog import Catalog, qualify


def _table(catalog: Catalog, name: str):
    schema, _, relname = name.rpartition(".")
    return catalog.table(qualify(schema or None, relname))


def estimate_seconds(effect, catalog: Catalog) -> float | None:
    """Seconds of heavy work, or None when a touched table's size is unknown."""
    total = 0.0
    touched = set(effect.rewrites) | set(effect.scans) | set(effect.locks)
    if not touched:
        return None
    for name in touched:
        table = _table(catalog, name)
        if table is None or table.bytes is None:
            return None
        if name in effect.rewrites:
            index_bytes = table.index_bytes or 0
            total += (table.bytes + index_bytes) / catalog.rewrite_bytes_per_second
        elif name in effect.scans:
            total += table.bytes / catalog.scan_bytes_per_second
    return round(total, 3)


def is_tiny(catalog: Catalog, name: str, config) -> bool:
    table = _table(catalog, name)
    if table is None or table.rows is None or table.bytes is None:
        return False
    return table.rows < config.tiny_table_rows and table.bytes < config.tiny_table_bytes


# Calibration: a measured sample turned into the throughput figures a Catalog carries.
MIN_BYTES_PER_SECOND = 1024 * 1024  # a figure below 1 MB/s means the sample was disturbed, not the disk
MAX_BYTES_PER_SECOND = 20 * 1024 * 1024 * 1024


def bytes_per_second(sample_bytes: int, seconds: float, overhead_seconds: float = 0.0) -> float | None:
    """Throughput of work that processed `sample_bytes` in `seconds` of wall time, of which
    `overhead_seconds` (the client's round trip) was not work. None when the sample says nothing."""
    work = seconds - max(overhead_seconds, 0.0)
    if sample_bytes <= 0 or work <= 0:
        return None
    return min(max(sample_bytes / work, MIN_BYTES_PER_SECOND), MAX_BYTES_PER_SECOND)


def with_throughput(catalog: Catalog, *, scan: float | None, rewrite: float | None) -> Catalog:
    """Set the catalog's throughput figures (in place, returned); None keeps the default."""
    if scan:
        catalog.scan_bytes_per_second = scan
    if rewrite:
        catalog.rewrite_bytes_per_second = rewrite
    return catalog
