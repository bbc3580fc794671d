"""[search]: Optuna's NSGA-II proposes the points (ask), the engine runs them on Ray, each result is told
back (tell); a failed point is a failed trial. The models, targets and axes' values are categorical
choices; the objectives are result columns, all minimised."""

from __future__ import annotations

import logging

from slmc.sweep.point import PointResult
from slmc.sweep.spec import Point, SweepSpec


class SearchFeed:
    def __init__(self, spec: SweepSpec) -> None:
        import optuna

        assert spec.search is not None
        optuna.logging.set_verbosity(logging.WARNING)
        s = spec.search
        population = s.population or max(4, min(50, s.trials // 4))
        sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=s.seed)
        self.study = optuna.create_study(directions=["minimize"] * len(s.objectives), sampler=sampler)
        self.spec, self.objectives, self.trials = spec, s.objectives, s.trials
        self.pending: dict[int, object] = {}
        self.asked = 0

    @property
    def total(self) -> int:
        return self.trials

    def next(self) -> tuple[int, Point] | None:
        if self.asked >= self.trials:
            return None
        trial = self.study.ask()
        model = trial.suggest_categorical("model", list(self.spec.models))
        target = trial.suggest_categorical("target", list(self.spec.targets))
        options = tuple((name, trial.suggest_categorical(name, list(vals))) for name, vals in self.spec.axes)
        i = self.asked
        self.asked += 1
        self.pending[i] = trial
        return i, Point(model, target, self.spec.steps, options)

    def done(self, index: int, res: PointResult) -> None:
        import optuna

        trial = self.pending.pop(index)
        values = [res.figures.get(o) for o in self.objectives]
        if res.status == "ok" and all(isinstance(v, (int, float)) for v in values):
            self.study.tell(trial, [float(v) for v in values])  # type: ignore[arg-type]
        else:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)

    def best(self) -> list[int]:
        """Trial numbers on the study's Pareto front."""
        return [t.number for t in self.study.best_trials]
