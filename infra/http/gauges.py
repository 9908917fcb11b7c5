"""The API process's gauges, read each time /metrics is scraped: is it up, the
ledger head, each read model's position and lag, and the relay's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client.core import Metric

from infra.http.metrics import gauge, labelled_gauge
from infra.logging import get_logger

if TYPE_CHECKING:
    from infra.http.context import ApiContext

log = get_logger("api")


def read_gauges(ctx: ApiContext) -> list[Metric]:
    gauges: list[Metric] = [gauge("dealledger_up", "The API process is up.", 1)]
    try:
        head = ctx.ledger().recorder.max_notification_id() or 0
        positions = sorted(ctx.read_models.positions().items())
    except Exception as exc:
        log.warning("metrics: positions unavailable", error=repr(exc))
        return gauges
    gauges.append(gauge("dealledger_ledger_head_position", "Highest stored ledger position.",
                        head))  # fmt: skip
    gauges.append(
        labelled_gauge(
            "dealledger_read_model_position",
            "Highest ledger position applied to each read model.",
            "projection",
            positions,
        )
    )
    gauges.append(
        labelled_gauge(
            "dealledger_projector_lag_positions",
            "Ledger positions not yet applied to each read model (head - applied).",
            "projection",
            [(p, max(0, head - v)) for p, v in positions],
        )
    )
    published = _relay_position(ctx)
    if published is not None:
        gauges.append(gauge("dealledger_relay_published_position",
                            "Highest ledger position the relay published to Kafka.",
                            published))  # fmt: skip
        gauges.append(gauge("dealledger_relay_lag_positions",
                            "Stored ledger positions not yet published to Kafka.",
                            max(0, head - published)))  # fmt: skip
    return gauges


def _relay_position(ctx: ApiContext) -> int | None:
    if not ctx.settings.uses_postgres:
        return None
    # Imported here for start-up time: the API needs only the relay's name, and the
    # relay's module would load the Kafka client into every API process.
    from infra.kafka.relay import RELAY_NAME

    try:
        with ctx.db.reading() as store:
            if store.scalar("SELECT to_regclass('relay_positions') IS NOT NULL") is not True:
                return None
            value = store.scalar(
                "SELECT position FROM relay_positions WHERE relay_name = %s", (RELAY_NAME,)
            )
    except Exception as exc:
        log.warning("metrics: relay position unavailable", error=repr(exc))
        return None
    return 0 if value is None else int(value)
