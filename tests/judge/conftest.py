"""The judge tests use the adapter tests' server thread (``tests/models/fault_server.py``)."""

import sys
from pathlib import Path

_MODELS = str(Path(__file__).parents[1] / "models")
if _MODELS not in sys.path:
    sys.path.insert(0, _MODELS)
