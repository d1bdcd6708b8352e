"""Bradley–Terry ratings of judged pairs: the statistics live in ``llmbench.metrics.ratings``
(below both this package and ``llmbench.report``), so ``llmbench judge pairwise`` and the
leaderboard's ratings view compute them in one place; re-exported here for the judge's callers."""

from llmbench.metrics.ratings import (
    Comparison,
    ModelStanding,
    Rating,
    Ratings,
    bradley_terry,
    comparison,
    design,
    rate,
    standings,
)

__all__ = ["Comparison", "ModelStanding", "Rating", "Ratings", "bradley_terry", "comparison", "design", "rate",
           "standings"]
