"""The method registry, what data a method reads (required and optional splits) and retain-free
variants.

A method declares ``requires`` (splits it cannot run without) and ``optional`` (splits it reads
when the task has them). One with ``"retain"`` in ``optional`` is also registered as
``NAME_noretain``: the same class with ``withheld = ("retain",)``, which the template removes from
the task before the method sees it, so both settings can be run and compared side by side.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Optional

from ...registry import Registry
from .selection import SELECTION_SPLITS

#: every registered method class by name (``register_method`` fills it)
METHODS: Registry[type] = Registry("method")

#: suffix of the retain-free variant of a method that uses retain data only when given
RETAIN_FREE_SUFFIX = "_noretain"


def check_declarations(cls: type) -> None:
    """The declared splits are consistent, and cover what the shared helpers read for the method: a
    method that takes ``select`` reads the splits of the selection scores."""
    both = set(cls.optional) & set(cls.requires)
    if both:
        raise TypeError(f"{cls.__name__} declares {sorted(both)} both required and optional")
    takes_select = is_dataclass(cls.Params) and "select" in {f.name for f in fields(cls.Params)}
    undeclared = [s for s in SELECTION_SPLITS if s not in cls.requires + cls.optional] if takes_select else []
    if undeclared:
        raise TypeError(f"{cls.__name__} takes select, whose scores read the {', '.join(undeclared)} split(s); "
                        f"add them to its optional (or requires) splits")


def retain_free_variant(cls: type) -> Optional[type]:
    """The ``NAME_noretain`` subclass of a method that reads retain only when given; None otherwise."""
    if "retain" not in cls.optional:
        return None
    return type(f"{cls.__name__}NoRetain", (cls,), {
        "name": f"{cls.name}{RETAIN_FREE_SUFFIX}", "summary": f"{cls.summary} [without retain data]",
        "optional": tuple(s for s in cls.optional if s != "retain"), "withheld": ("retain",),
        "__module__": cls.__module__, "__doc__": cls.__doc__})


def describe_data(cls: type, available: Optional[set[str]] = None) -> str:
    """The data a method reads: its required splits, then ``+ used when given: ...`` for its optional
    ones (with ``available``, only those the task provides), e.g. ``forget, third_party + used when
    given: retain``."""
    optional = [s for s in cls.optional if available is None or s in available]
    return ", ".join(cls.requires) + (f" + used when given: {', '.join(optional)}" if optional else "")


def register_method(cls: type) -> type:
    """Class decorator: register a method under its ``name`` (duplicates raise), and its retain-free
    variant ``NAME_noretain`` when it reads retain only when given."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} must set a class attribute 'name' before registering")
    if not cls.summary:
        raise TypeError(f"{cls.__name__} must set a one-line 'summary'")
    check_declarations(cls)
    METHODS.register(cls.name)(cls)
    variant = retain_free_variant(cls)
    if variant is not None:
        METHODS.register(variant.name)(variant)
    return cls
