from __future__ import annotations

from infra.http.metrics import Gauge, Metrics


def test_command_latencies_are_cumulative_buckets_with_sum_and_count() -> None:
    metrics = Metrics()
    metrics.command("OpenDeal", "accepted", 0.003)
    metrics.command("OpenDeal", "accepted", 0.2)
    metrics.command("OpenDeal", "forbidden", 0.001)

    text = metrics.render()

    labels = 'command="OpenDeal",outcome="accepted"'
    assert f"dealledger_commands_total{{{labels}}} 2" in text
    assert f'dealledger_command_duration_seconds_bucket{{{labels},le="0.005"}} 1' in text
    assert f'dealledger_command_duration_seconds_bucket{{{labels},le="0.25"}} 2' in text
    assert f'dealledger_command_duration_seconds_bucket{{{labels},le="+Inf"}} 2' in text
    assert f"dealledger_command_duration_seconds_count{{{labels}}} 2" in text
    assert 'dealledger_commands_total{command="OpenDeal",outcome="forbidden"} 1' in text
    assert "# TYPE dealledger_command_duration_seconds histogram" in text


def test_label_values_are_escaped_and_gauges_follow_the_counters() -> None:
    metrics = Metrics()
    metrics.request("GET", '/v1/"odd"\\path', 200)

    text = metrics.render([Gauge("dealledger_lag", "Lag.", [((("projection", "pipeline"),), 3)])])

    assert 'route="/v1/\\"odd\\"\\\\path"' in text
    assert text.endswith('dealledger_lag{projection="pipeline"} 3\n')
    assert "# TYPE dealledger_lag gauge" in text
