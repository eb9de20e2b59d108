"""One tiny registry type per family (models, heads, losses, metrics, optimizers, schedules)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["Registry", "UnknownNameError"]

T = TypeVar("T", bound=Callable[..., Any])


class UnknownNameError(KeyError):
    """An unknown registry name; the message lists the valid ones and near matches."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0])


class Registry(Generic[T]):
    """Maps a name to a builder; a duplicate name raises, an unknown one lists the choices."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(fn: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.family} {name!r} is registered twice")
            self._entries[name] = fn
            return fn

        return add

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            near = difflib.get_close_matches(name, self._entries, n=3)
            hint = f" Did you mean {', '.join(map(repr, near))}?" if near else ""
            raise UnknownNameError(
                f"unknown {self.family} {name!r}.{hint} Valid: {', '.join(sorted(self._entries))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))
