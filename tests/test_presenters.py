"""Progress text, ETA and chart scaling."""

from planner.models import BackfillRun
from planner.presenters import line_chart, run_progress


def test_progress_with_an_estimate():
    progress = run_progress(BackfillRun(status="running", rows_done=250, rows_total_estimate=1000, eta_seconds=75))
    assert (progress.percent, progress.text, progress.eta_text) == (25.0, "250 of about 1,000 rows", "1 min 15 s")


def test_progress_beyond_the_estimate_is_capped_and_said():
    progress = run_progress(BackfillRun(status="running", rows_done=1200, rows_total_estimate=1000))
    assert progress.percent == 100.0
    assert progress.text == "1,200 rows (more than the 1,000 estimated)"


def test_progress_without_an_estimate():
    progress = run_progress(BackfillRun(status="running", rows_done=5))
    assert (progress.percent, progress.text, progress.eta_text) == (None, "5 rows", "unknown")


def test_a_finished_run_has_no_eta():
    assert run_progress(BackfillRun(status="succeeded", rows_done=5, eta_seconds=99)).eta_text == "done"


def test_chart_scales_to_the_box():
    chart = line_chart([0.0, 50.0, 100.0], unit="ms", width=100, height=50)
    assert chart.points == "0.0,48.0 50.0,25.0 100.0,2.0"
    assert chart.max_label == "100 ms" and chart.count == 3


def test_no_chart_without_values():
    assert line_chart([], unit="ms") is None


def test_table_growth_is_shown_once_the_run_has_measured_it():
    run = BackfillRun(
        status="succeeded", rows_done=5, table_bytes_before=100 * 1024**2, table_bytes_after=115 * 1024**2
    )
    assert run_progress(run).growth_text == "100.0 MB → 115.0 MB (1.15×)"
    assert run_progress(BackfillRun(status="running", table_bytes_before=2048)).growth_text == "2.0 kB before the run"


def test_health_signals_show_values_next_to_limits():
    from planner.presenters import health_signals

    run = BackfillRun(
        spec={"table": "t", "set": "a = 1", "throttle": {"replica_lag_s": 5}},
        health={
            "replicas": 1,
            "replica_lag_s": 12.0,
            "lock_waiters": 0,
            "dead_tuples": 50_000,
            "dead_tuple_ratio": 0.2,
            "oldest_transaction_s": 3.0,
        },
    )
    shown = {signal.label: signal for signal in health_signals(run)}
    assert (shown["Replica lag"].value, shown["Replica lag"].limit, shown["Replica lag"].over) == (
        "12.0 s",
        "limit 5 s",
        True,
    )
    assert shown["Dead tuples"].over and shown["Dead tuples"].value == "20% (50,000)"
    assert not shown["Lock waits on the table"].over
    assert health_signals(BackfillRun(spec={}, health={})) == []
