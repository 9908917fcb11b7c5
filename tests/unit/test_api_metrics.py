from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from infra.http.metrics import Metrics, labelled_gauge


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }


def test_command_latencies_are_cumulative_buckets_with_sum_and_count() -> None:
    metrics = Metrics()
    metrics.command("OpenDeal", "accepted", 0.003)
    metrics.command("OpenDeal", "accepted", 0.2)
    metrics.command("OpenDeal", "forbidden", 0.001)

    samples = _samples(metrics)
    text = metrics.render().decode()

    labels = (("command", "OpenDeal"), ("outcome", "accepted"))

    def bucket(le: str) -> float:
        bounded = tuple(sorted((*labels, ("le", le))))
        return samples[("dealledger_command_duration_seconds_bucket", bounded)]

    assert samples[("dealledger_commands_total", labels)] == 2
    assert (bucket("0.005"), bucket("0.25"), bucket("+Inf")) == (1, 2, 2)
    assert samples[("dealledger_command_duration_seconds_count", labels)] == 2
    forbidden = (("command", "OpenDeal"), ("outcome", "forbidden"))
    assert samples[("dealledger_commands_total", forbidden)] == 1
    assert "# TYPE dealledger_command_duration_seconds histogram" in text
    assert "# HELP dealledger_commands_total Commands handled, by command type and outcome" in text
    assert "_created" not in text


def test_label_values_are_escaped_and_gauges_are_read_at_each_scrape_after_the_counters() -> None:
    lag = iter([3, 5])
    metrics = Metrics(
        gauges=lambda: [
            labelled_gauge("dealledger_lag", "Lag.", "projection", [("pipeline", next(lag))])
        ]
    )
    metrics.request("GET", '/v1/"odd"\\path', 200)

    first, second = metrics.render().decode(), metrics.render().decode()

    assert 'route="/v1/\\"odd\\"\\\\path"' in first
    assert "# TYPE dealledger_lag gauge" in first
    assert first.index("dealledger_http_requests_total") < first.index("dealledger_lag")
    assert 'dealledger_lag{projection="pipeline"} 3.0' in first
    assert 'dealledger_lag{projection="pipeline"} 5.0' in second
    assert "dealledger_metrics_scrape_seconds" in first.rsplit("dealledger_lag", 1)[1]


def test_each_metrics_has_its_own_registry() -> None:
    one, other = Metrics(), Metrics()
    one.auth_failure("revoked")

    assert _samples(one)[("dealledger_auth_failures_total", (("reason", "revoked"),))] == 1
    assert ("dealledger_auth_failures_total", (("reason", "revoked"),)) not in _samples(other)
