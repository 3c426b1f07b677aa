"""Name → factory registries (datasets, features, models, protocols)."""
from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from moodops.components.errors import ConfigError, UnknownNameError, invalid_choice

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from lower-case, CLI-ready names to registered objects.

    A duplicate name is an error; an unknown name lists the valid ones and
    suggests the closest.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        if name != name.lower() or not name or " " in name:
            raise ConfigError(f"{self.kind} names must be lower-case without spaces, got '{name}'")

        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ConfigError(f"a {self.kind} named '{name}' is already registered")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(invalid_choice(self.kind, name, sorted(self._entries))) from None

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
