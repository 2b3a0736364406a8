"""The post-deploy watch's decision tree, without an engine: which rule decides, when, and with
which PromQL; the entry point's CSV as a real HAProxy wrote it (tests/unit/golden/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops.config import WatchSettings, load_settings
from ops.deploy.watch import (
    Measurement,
    judge,
    p95_limit,
    promql,
    rule_query,
    slowest_median,
)
from ops.errors import ConfigError, UsageError
from ops.runtime.haproxy import StatsUnavailable, parse_csv
from ops.runtime.probe import Answer, Stats
from ops.runtime.prometheus import parse_vector, scalar

GOLDEN = Path(__file__).parent / "golden"
DEFAULTS = WatchSettings()


def measured(rule: str, value: float | None, samples: float, limit: float | None = None
             ) -> Measurement:
    threshold = getattr(DEFAULTS, rule).threshold
    return Measurement(rule, value, samples, threshold if limit is None else limit, "5m", "q")


def test_error_rate_above_five_percent_with_enough_requests_rolls_back() -> None:
    decision = judge({"error_rate": measured("error_rate", 0.2, 150)}, DEFAULTS, after_s=3)
    assert decision is not None
    assert (decision.rule, decision.action) == ("error_rate", "rollback")
    assert decision.explain() == ("error_rate 20.0% > 5.0% over 5m (150 samples, after 3.0s) "
                                  "→ rollback")


def test_error_rate_breach_on_too_few_requests_waits_until_the_window_ends() -> None:
    few = {"error_rate": measured("error_rate", 0.5, 10)}
    assert judge(few, DEFAULTS, after_s=1) is None
    final = judge(few, DEFAULTS, after_s=60, final=True)
    assert final is not None and final.rule == "error_rate"


def test_error_rate_of_exactly_five_percent_is_not_a_breach() -> None:
    assert judge({"error_rate": measured("error_rate", 0.05, 1000)}, DEFAULTS, after_s=1) is None


def test_database_errors_win_over_the_error_rate_they_cause() -> None:
    both = {"error_rate": measured("error_rate", 0.9, 500),
            "database_errors": measured("database_errors", 40, 40)}
    decision = judge(both, DEFAULTS, after_s=2)
    assert decision is not None
    assert (decision.rule, decision.action) == ("database_errors", "stop")


def test_worker_failures_roll_back_the_worker_service_only() -> None:
    decision = judge({"worker_failures": measured("worker_failures", 0.6, 30)}, DEFAULTS,
                     after_s=2)
    assert decision is not None and decision.action == "rollback-service"


def test_p95_limit_is_twice_the_baseline_but_never_below_the_floor() -> None:
    assert p95_limit(300.0, DEFAULTS) == 600.0
    assert p95_limit(20.0, DEFAULTS) == 100.0
    assert p95_limit(None, DEFAULTS) is None


def test_error_rate_of_six_percent_rolls_back() -> None:
    decision = judge({"error_rate": measured("error_rate", 0.06, 150)}, DEFAULTS, after_s=3)
    assert decision is not None and decision.explain().startswith("error_rate 6.0% > 5.0%")


def test_p95_above_twice_the_baseline_rolls_back() -> None:
    slow = {"p95": measured("p95", 250.0, 200, limit=p95_limit(100.0, DEFAULTS))}
    decision = judge(slow, DEFAULTS, after_s=5)
    assert decision is not None and decision.explain().startswith("p95 250 ms > 200 ms")


def test_p95_of_exactly_twice_the_baseline_is_tolerated() -> None:
    even = {"p95": measured("p95", 200.0, 200, limit=p95_limit(100.0, DEFAULTS))}
    assert judge(even, DEFAULTS, after_s=5, final=True) is None


def test_doubling_of_a_small_p95_is_noise_not_a_regression() -> None:
    small = {"p95": measured("p95", 90.0, 200, limit=p95_limit(30.0, DEFAULTS))}
    assert judge(small, DEFAULTS, after_s=5, final=True) is None


def test_p95_without_a_baseline_never_decides() -> None:
    slow = {"p95": Measurement("p95", 5000.0, 1000, None, "5m", "q")}
    assert judge(slow, DEFAULTS, after_s=60, final=True) is None


def test_a_short_windows_p95_from_one_or_two_slow_requests_does_not_roll_back() -> None:
    # 37 probes in a 2 s window: the nearest-rank p95 is the second-slowest answer
    cold_start = {"p95": Measurement("p95", 136.0, 37, 100.0, "the watch so far", "q",
                                     baseline=39.0, typical=41.0)}
    assert judge(cold_start, DEFAULTS, after_s=2, final=True) is None


def test_a_short_window_where_the_typical_request_is_past_the_limit_rolls_back() -> None:
    slow = {"p95": Measurement("p95", 480.0, 7, 240.0, "the watch so far", "q",
                               baseline=120.0, typical=450.0)}
    decision = judge(slow, DEFAULTS, after_s=3, final=True)
    assert decision is not None and decision.rule == "p95" and decision.action == "rollback"


def test_a_short_windows_p95_without_a_median_beside_it_decides_on_its_own() -> None:
    # Prometheus's p95 is a histogram quantile: no median is read beside it
    slow = {"p95": Measurement("p95", 900.0, 12, 300.0, "20s", "q", baseline=150.0)}
    decision = judge(slow, DEFAULTS, after_s=20, final=True)
    assert decision is not None and decision.rule == "p95"


def test_the_typical_request_is_the_median_of_the_slowest_probed_url() -> None:
    fast, slow = Stats(), Stats()
    for _ in range(20):
        fast.add(Answer(True, 200, 5.0, None))
        slow.add(Answer(True, 200, 3000.0, None))
    assert slowest_median({"/health": fast, "/work": slow}) == 3000.0
    assert slowest_median({"/health": Stats()}) is None


def test_a_p95_on_enough_requests_decides_whatever_the_median() -> None:
    tail = {"p95": Measurement("p95", 900.0, 200, 600.0, "the watch so far", "q",
                               baseline=300.0, typical=50.0)}
    decision = judge(tail, DEFAULTS, after_s=5)
    assert decision is not None and decision.rule == "p95"


def test_a_disabled_rule_never_decides() -> None:
    settings = load_settings({"environments": {"production": {"watch": {
        "error_rate": {"enabled": False}}}}}).environment("production").watch
    assert judge({"error_rate": measured("error_rate", 1.0, 1000)}, settings, after_s=1) is None


def test_a_rule_configured_to_warn_decides_with_the_warn_action() -> None:
    settings = load_settings({"environments": {"production": {"watch": {
        "p95": {"action": "warn", "threshold": 3}}}}}).environment("production").watch
    assert settings.p95.threshold == 3
    decision = judge({"p95": Measurement("p95", 900.0, 200, 600.0, "5m", "q")}, settings,
                     after_s=1)
    assert decision is not None and decision.action == "warn"


def test_a_window_that_is_not_a_promql_range_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"watch\.error_rate\.window: .*not a PromQL range"):
        load_settings({"environments": {"production": {"watch": {
            "error_rate": {"window": "5 minutes"}}}}})


def test_error_rate_promql_counts_5xx_of_the_new_version_without_health_or_metrics() -> None:
    figure, samples = promql("error_rate", "v0.3.0", "30s")
    traffic = 'version="v0.3.0", path!~"/health|/metrics"'
    assert figure == (f'(sum(rate(http_requests_total{{{traffic}, status=~"5.."}}[30s])) '
                      f"or vector(0)) / sum(rate(http_requests_total{{{traffic}}}[30s]))")
    assert samples == f"sum(increase(http_requests_total{{{traffic}}}[30s]))"


def test_p95_promql_is_the_histograms_95th_quantile_in_milliseconds() -> None:
    figure, _ = promql("p95", "v0.3.0", "5m")
    assert figure == ('histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds'
                      '_bucket{version="v0.3.0", path!~"/health|/metrics"}[5m]))) * 1000')


def test_a_version_label_cannot_break_out_of_its_promql_string() -> None:
    figure, _ = promql("worker_failures", 'v1"} or vector(1) #', "5m")
    assert 'version="v1\\"} or vector(1) #"' in figure


def test_configured_query_replaces_the_figure_and_gets_version_and_window() -> None:
    settings = load_settings({"environments": {"production": {"watch": {"database_errors": {
        "query": 'sum(increase(pg_errors{release="{version}"}[{window}]))',
        "window": "2m"}}}}}).environment("production").watch
    figure, _ = rule_query("database_errors", settings.database_errors, "v0.3.0")
    assert figure == 'sum(increase(pg_errors{release="v0.3.0"}[2m]))'


def test_prometheus_answer_with_nan_reads_as_no_data() -> None:
    payload = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {}, "value": [1.0, "NaN"]}]}}
    assert scalar(parse_vector(payload)) is None


def test_prometheus_error_answer_is_a_usage_error_with_its_reason() -> None:
    payload = {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}
    with pytest.raises(UsageError, match="bad_data: parse error at char 5"):
        parse_vector(payload)


def test_haproxy_csv_gives_each_servers_address_and_responses_by_class() -> None:
    servers = parse_csv((GOLDEN / "haproxy_stats.csv").read_text())
    assert [(s.server, s.address) for s in servers] == [("app1", "127.0.0.1:48293"),
                                                        ("app2", "127.0.0.1:48294")]
    assert servers[1].responses["5xx"] == 10
    assert servers[1].total == 20
    assert servers[1].ip == "127.0.0.1"


def test_a_page_that_is_not_haproxys_csv_is_refused() -> None:
    with pytest.raises(StatsUnavailable, match="not an HAProxy stats CSV"):
        parse_csv("<html>login</html>")


# --- answers recorded from the real Prometheus of the demo stack (e2e, TMINUS_RECORD_GOLDEN) ---

RECORDED = sorted(GOLDEN.glob("promql_*.json"))


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
def test_recorded_prometheus_answer_breaches_its_rule(path: Path) -> None:
    record = json.loads(path.read_text())
    rule = record["rule"]
    settings = WatchSettings.model_validate({rule: {
        "window": record["window"], "threshold": record["threshold"],
        "min_samples": record["min_samples"]}})
    figure_q, samples_q = rule_query(rule, getattr(settings, rule), record["version"])
    assert (figure_q, samples_q) == (record["figure"]["query"], record["samples"]["query"])
    value = scalar(parse_vector(record["figure"]["answer"]))
    samples = scalar(parse_vector(record["samples"]["answer"])) or 0.0
    limit = (p95_limit(record["baseline_p95_ms"], settings) if rule == "p95"
             else record["threshold"])
    decision = judge({rule: Measurement(rule, value, samples, limit, record["window"],
                                        figure_q)}, settings, after_s=1)
    assert decision is not None and decision.rule == rule


def test_metrics_summary_table_shows_shares_as_percentages_and_missing_figures_as_no_data(
        ) -> None:
    from ops.deploy.smoke import metrics_table

    table = metrics_table({"request_rate": {"value": 48.25}, "error_rate": {"value": 0.0123},
                           "p95_ms": {"value": None}, "worker_queue": {"value": 3.0},
                           "db_connections": {"value": 7.0}})
    rows = {line.split()[0]: " ".join(line.split()[1:]) for line in table.splitlines()[2:]}
    assert rows == {"request_rate": "48.2 req/s", "error_rate": "1.23%", "p95_ms": "no data",
                    "worker_queue": "3.0 jobs", "db_connections": "7.0 connections"}
