"""Pipeline definitions: stages are data, `won` and `lost` close every pipeline."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.errors import InvalidInput
from domain.pipeline import (
    DEFAULT_PIPELINE,
    LOST,
    WON,
    PipelineDefinition,
    Stage,
    pipeline_named,
)


def test_the_default_pipeline_has_the_five_open_stages_in_order() -> None:
    assert [s.name for s in DEFAULT_PIPELINE.stages] == [
        "lead",
        "qualified",
        "proposal",
        "negotiation",
        "committed",
    ]


@pytest.mark.parametrize(
    ("stage", "probability"),
    [("lead", 10), ("qualified", 25), ("proposal", 50), ("negotiation", 75), ("committed", 90)],
)
def test_each_default_stage_has_its_win_probability(stage: str, probability: int) -> None:
    assert DEFAULT_PIPELINE.probability(stage) == Decimal(probability)
    assert DEFAULT_PIPELINE.stage(stage).probability == Decimal(probability)


def test_probabilities_are_exact_decimals() -> None:
    assert all(isinstance(s.probability, Decimal) for s in DEFAULT_PIPELINE.stages)


def test_a_new_deal_starts_in_the_first_stage() -> None:
    assert DEFAULT_PIPELINE.first.name == "lead"


def test_won_is_one_hundred_percent_and_lost_is_zero() -> None:
    assert DEFAULT_PIPELINE.probability(WON) == Decimal(100)
    assert DEFAULT_PIPELINE.probability(LOST) == Decimal(0)


def test_won_and_lost_are_not_open_stages() -> None:
    assert not DEFAULT_PIPELINE.is_open_stage(WON)
    assert not DEFAULT_PIPELINE.is_open_stage(LOST)
    assert DEFAULT_PIPELINE.is_open_stage("proposal")


def test_an_unknown_stage_error_names_the_stage_and_lists_the_pipelines_stages() -> None:
    with pytest.raises(InvalidInput) as caught:
        DEFAULT_PIPELINE.stage("closing")
    message = str(caught.value)
    assert "'closing'" in message
    assert "default" in message
    assert "lead, qualified, proposal, negotiation, committed" in message
    assert caught.value.details["field"] == "stage"


def test_the_probability_of_an_unknown_stage_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown stage"):
        DEFAULT_PIPELINE.probability("closing")


def test_stage_names_are_case_sensitive() -> None:
    with pytest.raises(InvalidInput):
        DEFAULT_PIPELINE.stage("Lead")


def test_the_default_pipeline_is_found_by_name() -> None:
    assert pipeline_named("default") is DEFAULT_PIPELINE


def test_an_unknown_pipeline_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown pipeline 'enterprise'") as caught:
        pipeline_named("enterprise")
    assert caught.value.details["field"] == "pipeline"


def test_a_custom_pipeline_reports_its_own_stages() -> None:
    pipeline = PipelineDefinition("smb", (Stage("demo", Decimal(30)), Stage("trial", Decimal(60))))
    assert pipeline.probability("trial") == Decimal(60)
    with pytest.raises(InvalidInput, match="smb pipeline has demo, trial"):
        pipeline.stage("lead")


def test_a_pipeline_needs_at_least_one_open_stage() -> None:
    with pytest.raises(InvalidInput, match="at least one"):
        PipelineDefinition("empty", ())


@pytest.mark.parametrize(
    "stages",
    [
        (Stage("lead", Decimal(10)), Stage("lead", Decimal(20))),
        (Stage("lead", Decimal(10)), Stage(WON, Decimal(100))),
        (Stage(LOST, Decimal(0)),),
    ],
)
def test_stage_names_must_be_unique_and_not_won_or_lost(stages: tuple[Stage, ...]) -> None:
    with pytest.raises(InvalidInput, match="unique"):
        PipelineDefinition("bad", stages)


@pytest.mark.parametrize("probability", ["-1", "100.01", "250"])
def test_stage_probabilities_are_percentages(probability: str) -> None:
    with pytest.raises(InvalidInput, match="percentages"):
        PipelineDefinition("bad", (Stage("lead", Decimal(probability)),))


def test_probability_bounds_are_inclusive() -> None:
    pipeline = PipelineDefinition("edge", (Stage("cold", Decimal(0)), Stage("sure", Decimal(100))))
    assert pipeline.probability("cold") == 0
    assert pipeline.probability("sure") == 100
