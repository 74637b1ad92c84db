"""Our analyzer side by side with squawk on the measured corpus: blocking recall/precision and speed.

    python bench/analyze_vs_squawk.py [--repeat 5] [--details]

Truth is `tests/sql/corpus/measured.json` (what PostgreSQL 15 and 18 really did, see
tests/sql/corpus/measure.py): a statement is *blocking* when it holds SHARE or stronger on a table it
scans or rewrites, or one UPDATE/DELETE touches every row.

* Ours flags a statement when `analyze_text(...).statements[0].blocking` is true, with the case's
  setup as the known schema (`Catalog.from_sql`), as `--target` or earlier migrations provide.
* squawk (`squawk-cli` from PyPI) gets each statement in its own file, all files in one run, with
  `--pg-version`. It flags a statement when it reports one of SQUAWK_BLOCKING_RULES: the rules whose
  stated reason is that the statement blocks reads or writes while it works on the table (rewrite,
  scan, index build, validation). Rules about data loss, client compatibility, naming, types,
  idempotency or transaction misuse are not blocking warnings. `require-lock-timeout` and
  `require-statement-timeout` are counted separately (the "incl. timeout rules" row): they fire on
  every statement that takes ACCESS EXCLUSIVE or may be slow, i.e. they say "set a timeout", not
  "this statement blocks for a time that grows with the table".
* Speed: both tools read one file holding every corpus statement, repeated to 1,000+ statements,
  `--repeat` times; the median wall time per 1,000 statements is shown. squawk runs as its own
  process (that is how it is used); ours is shown in-process (warm: imports done) and as a fresh
  `python` process (cold: interpreter start and imports included). Neither gets a catalog here.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.sql.corpus.cases import CASES  # noqa: E402
from tests.sql.corpus.measure import MEASURED_PATH  # noqa: E402

SQUAWK_BLOCKING_RULES = {
    "adding-field-with-default",  # "requires a table rewrite with an ACCESS EXCLUSIVE lock"
    "adding-foreign-key-constraint",  # "blocks writes on both tables" while validating
    "adding-not-nullable-field",  # "SET NOT NULL blocks reads while the table is scanned"
    "adding-serial-primary-key-field",  # index build under ACCESS EXCLUSIVE
    "changing-column-type",  # "requires an ACCESS EXCLUSIVE lock and a table rewrite"
    "constraint-missing-not-valid",  # "require a table scan and block writes"
    "disallowed-unique-constraint",  # index build under ACCESS EXCLUSIVE
    "require-concurrent-index-creation",  # "table updates are blocked"
    "require-concurrent-index-deletion",  # "ACCESS EXCLUSIVE ... blocking other accesses"
    "require-concurrent-reindex",  # REINDEX blocks writes
    "require-concurrent-partition-detach",  # DETACH blocks reads and writes
    "ban-alter-domain-with-add-constraint",  # validates every column of the domain under lock
    "prefer-repack",  # VACUUM FULL / CLUSTER rewrite under ACCESS EXCLUSIVE
}
SQUAWK_TIMEOUT_RULES = {"require-lock-timeout", "require-statement-timeout"}
TARGET_STATEMENTS = 1000


def squawk_binary() -> str:
    found = shutil.which("squawk", path=str(Path(sys.executable).parent)) or shutil.which("squawk")
    if not found:
        sys.exit("squawk not found: pip install squawk-cli")
    return found


def load_truth() -> tuple[dict, list[str]]:
    measured = json.loads(MEASURED_PATH.read_text())
    return measured["cases"], sorted(measured["servers"], key=int)


def ours_flags(label: str) -> tuple[dict[str, bool], list[str]]:
    from planner.sql.analysis import analyze_text
    from planner.sql.catalog import Catalog

    flags, errors = {}, []
    for case in CASES:
        if not case.runs_on(int(label)):
            continue
        try:
            catalog = Catalog.from_sql(case.setup, pg_version=int(label))
            report = analyze_text(case.statement, path=f"{case.id}.sql", pg_version=int(label), catalog=catalog)
            flags[case.id] = bool(report.statements[0].blocking)
        except Exception as error:  # noqa: BLE001 - a crash is a miss, and is listed
            flags[case.id] = False
            errors.append(f"{case.id}: {type(error).__name__}: {error}")
    return flags, errors


def squawk_rules(label: str, workdir: Path) -> dict[str, set[str]]:
    """case id → squawk rule names reported for its statement (one file per case, one squawk run)."""
    folder = workdir / f"cases{label}"
    folder.mkdir()
    for case in CASES:
        if case.runs_on(int(label)):
            (folder / f"{case.id}.sql").write_text(case.statement + ";\n")
    files = sorted(p.name for p in folder.iterdir())
    result = subprocess.run(
        [squawk_binary(), "--reporter", "json", f"--pg-version={label}.0", *files],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 1):
        sys.exit(f"squawk failed ({result.returncode}): {result.stderr[-500:]}")
    rules: dict[str, set[str]] = {name[: -len(".sql")]: set() for name in files}
    for violation in json.loads(result.stdout or "[]"):
        rules[Path(violation["file"]).stem].add(violation["rule_name"])
    return rules


def score(flags: dict[str, bool], truth: dict[str, bool]) -> dict:
    tp = sum(1 for cid, blocking in truth.items() if blocking and flags.get(cid))
    fp = sum(1 for cid, blocking in truth.items() if not blocking and flags.get(cid))
    fn = sum(1 for cid, blocking in truth.items() if blocking and not flags.get(cid))
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "missed": sorted(cid for cid, b in truth.items() if b and not flags.get(cid)),
        "false_alarms": sorted(cid for cid, b in truth.items() if not b and flags.get(cid)),
    }


def timing_file(workdir: Path) -> tuple[Path, int]:
    statements = [case.statement for case in CASES]
    copies = -(-TARGET_STATEMENTS // len(statements))
    text = "".join(f"{statement};\n\n" for _ in range(copies) for statement in statements)
    path = workdir / "all.sql"
    path.write_text(text)
    return path, copies * len(statements)


def median_seconds(run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--details", action="store_true", help="list misses and false alarms")
    args = parser.parse_args(argv)

    truth_cases, labels = load_truth()
    version = subprocess.run([squawk_binary(), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    rows, details = [], []
    with tempfile.TemporaryDirectory(prefix="bench-squawk-") as tmp:
        workdir = Path(tmp)
        for label in labels:
            truth = {cid: entry[label]["blocking"] for cid, entry in truth_cases.items() if label in entry}
            ours, errors = ours_flags(label)
            reported = squawk_rules(label, workdir)
            squawk = {cid: bool(rules & SQUAWK_BLOCKING_RULES) for cid, rules in reported.items()}
            with_timeouts = SQUAWK_BLOCKING_RULES | SQUAWK_TIMEOUT_RULES
            squawk_t = {cid: bool(rules & with_timeouts) for cid, rules in reported.items()}
            for name, flags in (("ours", ours), ("squawk", squawk), ("squawk incl. timeout rules", squawk_t)):
                result = score(flags, truth)
                rows.append((label, name, len(truth), sum(truth.values()), result))
                details.append((label, name, result))
            details.extend((label, "ours crashed", {"errors": errors}) for _ in [0] if errors)

        path, count = timing_file(workdir)
        text = path.read_text()
        from planner.sql.analysis import analyze_text

        analyze_text(text, path="all.sql", pg_version=15)  # warm-up: imports, caches
        ours_warm = median_seconds(lambda: analyze_text(text, path="all.sql", pg_version=15), args.repeat)
        cold = [
            sys.executable,
            "-c",
            "import sys; from planner.sql.analysis import analyze_text; "
            "analyze_text(open(sys.argv[1]).read(), path='all.sql', pg_version=15)",
            str(path),
        ]
        ours_cold = median_seconds(lambda: subprocess.run(cold, cwd=ROOT, check=True), args.repeat)
        squawk_cmd = [squawk_binary(), "--reporter", "json", "--pg-version=15.0", path.name]
        squawk_time = median_seconds(
            lambda: subprocess.run(squawk_cmd, cwd=workdir, capture_output=True, check=False), args.repeat
        )

    print(f"Blocking detection on the measured corpus ({version}; truth: PostgreSQL {', '.join(labels)})")
    header = ("PG", "tool", "stmts", "blocking", "TP", "FP", "FN", "recall", "precision")
    print("{:>3}  {:28} {:>5} {:>8} {:>4} {:>4} {:>4} {:>7} {:>9}".format(*header))
    for label, name, total, positives, r in rows:
        print(
            f"{label:>3}  {name:28} {total:>5} {positives:>8} {r['tp']:>4} {r['fp']:>4} {r['fn']:>4} "
            f"{r['recall']:>7.3f} {r['precision']:>9.3f}"
        )
    per = 1000 / count
    print(f"\nWall time per 1,000 statements (one file of {count} statements, median of {args.repeat})")
    print(f"  squawk (process)            {squawk_time * per * 1000:9.1f} ms")
    for name, seconds in (("ours, in-process (warm)", ours_warm), ("ours, fresh process (cold)", ours_cold)):
        print(f"  {name:27} {seconds * per * 1000:9.1f} ms   ratio ours/squawk {seconds / squawk_time:6.2f}x")
    if args.details:
        for label, name, result in details:
            print(f"\nPG {label} {name}:")
            for key in ("missed", "false_alarms", "errors"):
                if result.get(key):
                    print(f"  {key}: {', '.join(result[key])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
