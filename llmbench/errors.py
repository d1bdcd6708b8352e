"""Every exception that means "the user gave us something wrong".

The CLI prints these as one line and exits with code 2; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


def user_error_types() -> tuple[type[BaseException], ...]:
    from llmbench.models.base import ModelError
    from llmbench.registry import RegistryError
    from llmbench.runner import RunError
    from llmbench.store import StoreError
    from llmbench.suite import SuiteError
    from llmbench.tasks.base import TaskError
    from llmbench.tasks.data import DataError

    types: list[type[BaseException]] = [ModelError, RegistryError, RunError, StoreError,
                                        SuiteError, TaskError, DataError]
    try:
        from llmbench.metrics import MetricError

        types.append(MetricError)
    except ImportError:
        pass
    try:
        from llmbench.report.errors import ReportError

        types.append(ReportError)
    except ImportError:
        pass
    try:
        from llmbench.data import DatasetError

        types.append(DatasetError)
    except ImportError:
        pass
    return tuple(types)
