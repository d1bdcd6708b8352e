"""Named registries for pluggable components, with lazy targets and entry points.

A target is either the object itself (registered with a decorator) or a lazy
``"module:attr"`` string that is imported only when looked up — so listing tasks
or parsing a CLI never imports torch. Third parties add components through the
entry-point group ``llmbench.<kind>s`` (e.g. ``llmbench.tasks``), read on first lookup.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from llmbench.errors import UserError

T = TypeVar("T")


class RegistryError(UserError, LookupError):
    """An unknown name; the message lists what is known."""


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T | str] = {}
        self._origin: dict[str, str] = {}
        self._entry_points_loaded = False

    def register(self, name: str, target: T | str, *, origin: str = "builtin") -> None:
        """Register ``target`` (the object, or a lazy ``"module:attr"`` string) under ``name``.

        No decorator form: a decorator typed by this registry's ``T`` would turn a decorated
        class into ``T`` for the type checker; ``tasks.register_task`` is the typed decorator.
        """
        self._items[name] = target
        self._origin[name] = origin

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=f"llmbench.{self.kind}s"):
            if ep.name not in self._items:
                self._items[ep.name] = ep.value
                self._origin[ep.name] = f"plugin:{ep.dist.name if ep.dist else '?'}"

    def get(self, name: str) -> T:
        self._load_entry_points()
        if name not in self._items:
            known = ", ".join(sorted(self._items)) or "none"
            raise RegistryError(f"unknown {self.kind} '{name}' (known: {known})")
        target = self._items[name]
        if isinstance(target, str) and ":" in target:
            module, _, attr = target.partition(":")
            obj = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
            self._items[name] = obj  # type: ignore[assignment]
            return obj  # type: ignore[return-value]
        return target  # type: ignore[return-value]

    def origin(self, name: str) -> str:
        self._load_entry_points()
        return self._origin.get(name, "?")

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


# The registries. Built-in entries are lazy strings so that importing this is free.
tasks: Registry[Callable[..., object]] = Registry("task")
models: Registry[Callable[..., object]] = Registry("model")
