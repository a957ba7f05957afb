"""A small name -> object registry used for methods, datasets, models and scenarios."""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from .errors import UnknownNameError, UnlearnkitError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects; registering a name twice or asking for an unknown one raises.

    >>> models = Registry("model")
    >>> @models.register("mlp")
    ... def build_mlp(): ...
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        if not name or not name.replace("_", "").isalnum() or name != name.lower():
            raise UnlearnkitError(f"{self.kind} name {name!r} must be lower-case letters, digits and '_'")

        def decorator(obj: T) -> T:
            if name in self._items:
                raise UnlearnkitError(
                    f"{self.kind} {name!r} is already registered (by {self._items[name]!r}); "
                    "choose another name"
                )
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(sorted(self._items)) or "(none registered)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; valid names: {valid}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
