"""One tiny registry type per family (models, heads, losses, metrics, optimizers, schedules)."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["Registry", "UnknownNameError", "check_kwargs_fit", "check_registered", "near"]

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


def near(name: str, choices: list[str]) -> str:
    """' Did you mean ...?' for close matches, else ''."""
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    return f" Did you mean {', '.join(map(repr, close))}?" if close else ""


def check_registered(registry: Registry, name: str) -> str:
    if name not in registry:
        raise ValueError(
            f"unknown {registry.family} {name!r}.{near(name, registry.names())} "
            f"Valid: {', '.join(registry.names())}"
        )
    return name


def check_kwargs_fit(
    registry: Registry, name: str, kwargs: dict[str, Any], skip_first: bool
) -> None:
    """Raise if kwargs do not fit the builder's signature (unknown or missing arguments)."""
    check_registered(registry, name)
    signature = inspect.signature(registry.get(name))
    params = list(signature.parameters.values())[1 if skip_first else 0 :]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    accepted = [p.name for p in params]
    required = [p.name for p in params if p.default is p.empty and p.kind is not p.VAR_POSITIONAL]
    missing = [name for name in required if name not in kwargs]
    if missing:
        raise ValueError(f"{registry.family} {name!r} needs {', '.join(map(repr, missing))}")
    for key in kwargs:
        if key not in accepted:
            raise ValueError(
                f"{registry.family} {name!r} has no argument {key!r}.{near(key, accepted)} "
                f"Accepted: {', '.join(accepted) or 'none'}"
            )
