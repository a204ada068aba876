"""``sweep.strategy = "sweep"``: the space expanded once (``sweep.method``: grid,
random, sobol), every configuration x ``sweep.seeds`` seeds as one population."""

from __future__ import annotations

from jaxexp.run import population
from jaxexp.search import spacefile
from jaxexp.search.protocol import Generation, Strategy


class Expand(Strategy):
    name = "sweep"

    def __init__(self, config, workdir):
        super().__init__(spacefile.resolve(config), workdir)
        self.results = None

    def ask(self):
        if self.results is not None or self.interrupted is not None:
            return None
        return Generation(population.members_table(self.config), self.config, self.workdir)

    def tell(self, generation, members, results):
        self.results = results

    def result(self):
        return self.interrupted if self.interrupted is not None else self.results

    def summary(self):
        res = self.results
        try:
            best = res.best_member()
        except ValueError as e:  # every member diverged: a result, written and reported
            return f"wrote {self.workdir}/report.md; {e}"
        return (
            f"wrote {self.workdir}/report.md; best member {int(best['member'])}: "
            f"best {res.metric} = {best['best_' + res.metric]:.5g} at epoch {best['best_epoch']}"
        )

    def stopped(self):
        res = self.interrupted
        n = int((res.members["status"] == "stopped").sum())
        resumable = " (the same command resumes)" if self.config.engine.checkpoint else ""
        return f"jaxexp: interrupted: wrote partial results to {self.workdir} ({n} member(s) stopped){resumable}"
