from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest

from commands.ledger import DealLedger
from domain.clock import ManualClock
from domain.deal import Deal, DealStatus
from domain.ids import new_aggregate_id
from domain.registration import Registration, RegistrationStatus
from domain.values import Money
from infra.bootstrap import build_ledger
from infra.demo import DEMO_START, run_demo
from infra.demo.scenario import DemoRun, Scenario
from infra.settings import Settings
from tests.support.env import without_settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    without_settings(monkeypatch)
    return Settings(sqlite_path=tmp_path / "demo.sqlite")


@pytest.fixture
def reopen(settings: Settings) -> Iterator[Callable[[], DealLedger]]:
    """A ledger built afresh on the demo's file, as a later process would."""
    ledgers: list[DealLedger] = []

    def _open() -> DealLedger:
        ledgers.append(build_ledger(settings))
        return ledgers[-1]

    yield _open
    for ledger in ledgers:
        ledger.close()


def _stored(ledger: DealLedger) -> int:
    return len(ledger.recorder.select_notifications(start=1, limit=100_000))


# -- the story, as the scenario plays it ----------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DealLedger, list[DemoRun]]]:
    """Two runs of the story on one store, as `dealledger demo` and then `--keep` play
    them: the second on its own codes and product lines, a day after the first."""
    clock = ManualClock(DEMO_START)
    ledger = build_ledger(
        Settings(sqlite_path=tmp_path_factory.mktemp("story") / "story.sqlite"), clock=clock
    )
    first = Scenario(ledger, clock, 1).play()
    clock.set(datetime.combine(clock.now().date() + timedelta(days=1), DEMO_START.timetz()))
    second = Scenario(ledger, clock, 2).play()
    yield ledger, [first, second]
    ledger.close()


def _events(ledger: DealLedger, aggregate_id: UUID) -> list[object]:
    return list(ledger.repository.event_store.get(aggregate_id))


def _created(ledger: DealLedger, run: DemoRun, name: str) -> UUID:
    aggregate_id = run.outcome(name).aggregate_id
    assert aggregate_id is not None
    return aggregate_id


def _review_reasons(ledger: DealLedger, run: DemoRun, name: str) -> set[str]:
    registration_id = _created(ledger, run, name)
    return {
        reason
        for event in _events(ledger, registration_id)
        if isinstance(event, Registration.SentToReview)
        for reason in event.reasons
    }


@pytest.mark.parametrize("index", [0, 1], ids=["run 1", "run 2 (--keep)"])
def test_the_story_plays_out_as_the_rules_say(
    runs: tuple[DealLedger, list[DemoRun]], index: int
) -> None:
    ledger, played = runs
    run = played[index]
    suffix = "" if run.run == 1 else f"-r{run.run}"

    def registration(name: str) -> Registration:
        return ledger.get_registration(_created(ledger, run, name))

    # A suspended partner registers nothing.
    assert ledger.get_partner(f"tailspin{suffix}").suspended
    refused = run.refusal("tailspin-umbrella")
    assert refused is not None
    assert refused.code == "partner_suspended"
    # First to register a free key within limits is approved at once.
    assert registration("northwind-globex").approved_automatically
    # The same key written differently is sent to review as protected, then rejected.
    assert "key_protected" in _review_reasons(ledger, run, "contoso-globex")
    assert registration("contoso-globex").status is RegistrationStatus.REJECTED
    # Another subdomain of the same company is a near-duplicate: reviewed.
    assert "near_duplicate" in _review_reasons(ledger, run, "fabrikam-eu-globex")
    assert "above_auto_approval_limit" in _review_reasons(ledger, run, "contoso-initech")
    # A direct deal on a protected key is a channel conflict.
    conflict = run.refusal("direct-globex")
    assert conflict is not None
    assert conflict.code == "channel_conflict"

    won = ledger.get_deal(_created(ledger, run, "convert-globex"))
    assert won.status is DealStatus.WON
    assert won.shares == {f"northwind{suffix}": Decimal(70), f"contoso{suffix}": Decimal(30)}
    assert won.attributed == {
        f"northwind{suffix}": Money(Decimal("148641.97"), "USD"),
        f"contoso{suffix}": Money(Decimal("63703.70"), "USD"),
    }
    assert sum(m.amount for m in won.attributed.values()) == won.amount.amount
    lost = ledger.get_deal(_created(ledger, run, "convert-initech"))
    assert (lost.status, lost.competitor) == (DealStatus.LOST, "Hooli")

    # The re-sent command got its first outcome back and wrote nothing more.
    assert run.outcome("initech-proposal").replayed
    moves = [e for e in _events(ledger, lost.id) if isinstance(e, Deal.StageChanged)]
    assert [e.to_stage for e in moves] == ["qualified", "proposal"]

    # The sweep ends exactly this run's lapsed protection: the near-duplicate's.
    product = "analytics cloud" if run.run == 1 else f"analytics cloud r{run.run}"
    swept = [ledger.get_registration(UUID(r)) for r in run.outcome("sweep").result["expired"]]
    mine = [r for r in swept if r.product_line == product]
    assert [r.id for r in mine] == [_created(ledger, run, "fabrikam-eu-globex")]
    assert mine[0].status is RegistrationStatus.EXPIRED
    # The key it freed is registered again, and approved at once.
    assert registration("contoso-eu-globex").approved_automatically
    opened = [_created(ledger, run, name) for name in ("convert-eu-globex", "direct-hooli")]
    assert [ledger.get_deal(d).status for d in opened] == [DealStatus.OPEN] * 2


def test_each_step_is_told_at_the_moment_it_happened(
    runs: tuple[DealLedger, list[DemoRun]],
) -> None:
    _, played = runs
    for run in played:
        moments = [step.at for step in run.steps]
        assert moments == sorted(moments)
        texts = [step.text for step in run.steps]
        assert any("replayed=True, 0 new events" in text for text in texts)
        (won,) = [step for step in run.steps if step.breakdown]
        assert [line[0] for line in won.breakdown][-1] == "total"
        assert sum(line[2] for line in won.breakdown[:-1]) == won.breakdown[-1][2]


def test_the_demo_tells_the_whole_story_and_stores_it_in_sqlite(
    settings: Settings, reopen: Callable[[], DealLedger], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_demo(settings, settings.sqlite_path) == 0

    out = capsys.readouterr().out
    assert settings.sqlite_path.exists()
    ledger = reopen()
    stored = _stored(ledger)
    assert stored > 50
    assert f"{stored} events stored in {settings.sqlite_path.resolve()}" in out
    for outcome in (
        "REFUSED partner_suspended",
        "[key_protected]",
        "rejected (duplicate)",
        "[near_duplicate]",
        "[above_auto_approval_limit]",
        "action_required",
        "[resubmitted]",
        "extension 1 of 2",
        "REFUSED channel_conflict",
        "WON at 212,345.67 USD",
        "148,641.97 USD",
        "63,703.70 USD",
        "LOST (reason competitor, competitor Hooli)",
        "replayed=True, 0 new events",
        "-> registration expired",
        "PARTNERS",
        "REGISTRATIONS",
        "DEALS",
    ):
        assert outcome in out, outcome
    assert len(out.splitlines()) <= 170


def test_the_stored_state_matches_what_the_demo_printed(
    settings: Settings, reopen: Callable[[], DealLedger]
) -> None:
    assert run_demo(settings, settings.sqlite_path) == 0

    ledger = reopen()
    won = ledger.get_deal(new_aggregate_id("deal", "demo:convert-globex"))
    assert won.status is DealStatus.WON
    assert won.shares == {"northwind": Decimal(70), "contoso": Decimal(30)}
    assert won.attributed == {
        "northwind": Money(Decimal("148641.97"), "USD"),
        "contoso": Money(Decimal("63703.70"), "USD"),
    }
    lost = ledger.get_deal(new_aggregate_id("deal", "demo:convert-initech"))
    assert (lost.status, lost.competitor) == (DealStatus.LOST, "Hooli")
    expired = ledger.get_registration(new_aggregate_id("registration", "demo:fabrikam-eu-globex"))
    assert expired.status is RegistrationStatus.EXPIRED
    assert ledger.get_partner("tailspin").suspended


def test_a_fresh_demo_replaces_the_store_and_keep_appends_another_run(
    settings: Settings, reopen: Callable[[], DealLedger], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_demo(settings, settings.sqlite_path) == 0
    first = _stored(reopen())
    assert run_demo(settings, settings.sqlite_path, fresh=True) == 0
    assert _stored(reopen()) == first
    capsys.readouterr()

    assert run_demo(settings, settings.sqlite_path, fresh=False) == 0

    out = capsys.readouterr().out
    assert "Run 2" in out
    assert _stored(reopen()) > 2 * first - 10


def test_the_demo_shows_read_models_fed_in_process_from_its_store(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    from infra.store.databases import read_model_path
    from projections.pipeline import pipeline_totals
    from projections.store import ReadStore

    assert run_demo(settings, settings.sqlite_path) == 0
    out = capsys.readouterr().out
    path = read_model_path(settings.sqlite_path.resolve())
    assert f"into {path}" in out
    with sqlite3.connect(path) as conn:
        totals = {(t.key, t.currency): t for t in pipeline_totals(ReadStore(conn), "stage")}
    # The two open deals the story ends with, grouped by stage and never by a mixed currency.
    assert set(totals) == {("qualified", "USD"), ("proposal", "GBP")}
    assert totals[("proposal", "GBP")].weighted_amount == 60000
    assert "PIPELINE (open deals)" in out
    assert "PARTNER ATTRIBUTION" in out
    assert "148,641.97 USD" in out.split("PARTNER ATTRIBUTION", 1)[1]


# -- the demo's own store, through the CLI ------------------------------------------------


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory where the user already has a store of their own, at the
    default path that `serve` and `keys` use."""
    without_settings(monkeypatch)
    monkeypatch.chdir(tmp_path)
    from commands.models import ActorIn, OnboardPartner
    from domain.values import Actor, Role
    from infra.cli import main

    user = Settings()
    ledger = build_ledger(user)
    ledger.execute(
        OnboardPartner(
            command_id="mine",
            actor=ActorIn.of(Actor.user("ops", Role.ADMIN)),
            partner_code="acme",
            name="Acme",
        )
    )
    ledger.close()
    assert main(["keys", "create", "--user", "ops", "--role", "admin"]) == 0
    return tmp_path


def _user_data(path: Path) -> tuple[int, list[str]]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        (events,) = conn.execute("SELECT count(*) FROM stored_events").fetchone()
        keys = [row[0] for row in conn.execute("SELECT key_id FROM api_keys")]
    return events, keys


def test_the_demo_never_touches_the_store_serve_and_keys_use(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra.cli import main

    user_store = workdir / ".dealledger" / "ledger.sqlite"
    before = _user_data(user_store)
    capsys.readouterr()

    assert main(["demo"]) == 0

    out = capsys.readouterr().out
    demo_store = (workdir / ".dealledger" / "demo.sqlite").resolve()
    assert _user_data(user_store) == before
    assert f"fresh embedded store: {demo_store}" in out
    assert f"DEALLEDGER_SQLITE_PATH={demo_store} " in out
    assert _stored_in(demo_store) > 50
    # Run again: the demo replaces the store it made itself.
    assert main(["demo"]) == 0
    assert _user_data(user_store) == before


def _stored_in(path: Path) -> int:
    ledger = build_ledger(Settings(sqlite_path=path))
    try:
        return _stored(ledger)
    finally:
        ledger.close()


@pytest.mark.parametrize("keep", [False, True])
def test_the_demo_refuses_a_store_it_did_not_create_unless_forced(
    keep: bool, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra.cli import main

    user_store = workdir / ".dealledger" / "ledger.sqlite"
    before = _user_data(user_store)
    capsys.readouterr()
    argv = ["demo", "--store", str(user_store), *(["--keep"] if keep else [])]

    assert main(argv) == 2

    err = capsys.readouterr().err
    assert "was not created by the demo" in err
    assert "--force" in err
    assert _user_data(user_store) == before
    assert not (workdir / ".dealledger" / "ledger-read-models.sqlite").exists()

    assert main([*argv, "--force"]) == 0
    events, keys = _user_data(user_store)
    if keep:
        assert events > before[0]
        assert set(before[1]) <= set(keys)
    else:
        assert events > 50
        assert not set(before[1]) & set(keys)


def test_demo_serve_serves_the_demo_store(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import infra.http.server
    from infra.cli import main

    served: list[Settings] = []
    monkeypatch.setattr(
        infra.http.server, "serve", lambda wiring, **_: served.append(wiring.settings)
    )
    store = workdir / "elsewhere" / "show.sqlite"

    assert main(["demo", "--store", str(store), "--serve", "--port", "8123"]) == 0

    assert [s.sqlite_path.resolve() for s in served] == [store.resolve()]
    assert served[0].database_url is None
    assert f"Serving the demo store {store.resolve()}" in capsys.readouterr().out
