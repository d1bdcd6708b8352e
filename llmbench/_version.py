"""The package version, in a module of its own.

Ground floor: imports nothing, so modules inside the package (``--version``, the fine-tuned
model card) can read the version without importing the root package, whose lazy
``__getattr__`` re-exports the Python API from the top layer (``llmbench.api``).
"""

__version__ = "0.1.0"
