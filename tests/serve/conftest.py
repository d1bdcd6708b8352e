"""The server tests drive the real server through ``tests/models/fault_server.py`` (a uvicorn
thread and a fault injector); put that folder on the import path for them."""

from __future__ import annotations

import sys
from pathlib import Path

_MODELS = str(Path(__file__).resolve().parent.parent / "models")
if _MODELS not in sys.path:
    sys.path.insert(0, _MODELS)
