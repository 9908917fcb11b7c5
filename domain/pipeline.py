"""Pipeline definitions: the stages a deal moves through are data, not code."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.errors import InvalidInput

WON = "won"
LOST = "lost"


@dataclass(frozen=True)
class Stage:
    name: str
    probability: Decimal  # percent, 0..100


@dataclass(frozen=True)
class PipelineDefinition:
    """Ordered open stages; `won` (100%) and `lost` (0%) close every pipeline."""

    name: str
    stages: tuple[Stage, ...]

    def __post_init__(self) -> None:
        names = [s.name for s in self.stages]
        if not names:
            raise InvalidInput("a pipeline needs at least one open stage", field="stages")
        if len(set(names)) != len(names) or {WON, LOST} & set(names):
            raise InvalidInput("stage names must be unique and not won/lost", field="stages")
        if any(not (0 <= s.probability <= 100) for s in self.stages):
            raise InvalidInput("stage probabilities are percentages 0..100", field="stages")

    @property
    def first(self) -> Stage:
        return self.stages[0]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise InvalidInput(
            f"unknown stage {name!r}; the {self.name} pipeline has "
            + ", ".join(s.name for s in self.stages),
            field="stage",
        )

    def probability(self, name: str) -> Decimal:
        if name == WON:
            return Decimal(100)
        if name == LOST:
            return Decimal(0)
        return self.stage(name).probability

    def is_open_stage(self, name: str) -> bool:
        return any(s.name == name for s in self.stages)


DEFAULT_PIPELINE = PipelineDefinition(
    name="default",
    stages=(
        Stage("lead", Decimal(10)),
        Stage("qualified", Decimal(25)),
        Stage("proposal", Decimal(50)),
        Stage("negotiation", Decimal(75)),
        Stage("committed", Decimal(90)),
    ),
)

PIPELINES: dict[str, PipelineDefinition] = {DEFAULT_PIPELINE.name: DEFAULT_PIPELINE}


def pipeline_named(name: str) -> PipelineDefinition:
    try:
        return PIPELINES[name]
    except KeyError:
        raise InvalidInput(f"unknown pipeline {name!r}", field="pipeline") from None
