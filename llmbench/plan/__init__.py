"""The plan executor: (models x tasks x options) -> stored runs, below the CLI and the API.

``build`` makes a ``RunPlan`` from arguments or a suite file; ``execute`` runs it (every
refusal, executor choice and placement, progress through a ``Reporter``). ``llmbench run``
and ``llmbench.evaluate`` are thin faces over these two, so they store identical runs.
"""

from llmbench.plan.build import PlannedTask, RunPlan, plan_from_args, plan_from_suite
from llmbench.plan.execute import PlanOutcome, execute
from llmbench.plan.progress import ProgressLines, Reporter

__all__ = ["PlanOutcome", "PlannedTask", "ProgressLines", "Reporter", "RunPlan", "execute",
           "plan_from_args", "plan_from_suite"]
