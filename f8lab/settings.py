"""Settings: dataclass fields that carry their own checks, and the function that runs them.

A configuration dataclass declares each field with ``setting(default, choices=..., check=...,
resumable=...)`` and calls ``check_settings(self)`` in ``__post_init__``: the type comes from
the annotation (an int is accepted for a float), the valid values and the range from the
field itself, so a value is validated where its field is declared. A class may name the keys
it renamed in ``RENAMED`` (old name: new name); ``renamed_to`` reads it.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], str | None]  # None: the value is fine; else what is wrong with it


class SettingError(ValueError):
    """A field's value is wrong; ``key`` names the field, ``problem`` says what and how."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


def setting(
    default: Any = dataclasses.MISSING,
    *,
    choices: tuple = (),
    check: Check | None = None,
    resumable: bool = False,
) -> Any:
    """A dataclass field with its checks: ``choices`` (the valid values), ``check`` (a test
    of the value), ``resumable`` (a resumed run may give it another value)."""
    return dataclasses.field(
        default=default, metadata={"choices": choices, "check": check, "resumable": resumable}
    )


def positive(value: float) -> str | None:
    return None if value > 0 else "must be positive"


def non_negative(value: float) -> str | None:
    return None if value >= 0 else "must be zero or positive"


def below_one(value: float) -> str | None:
    """In [0, 1)."""
    return non_negative(value) or (None if value < 1 else "must be below 1")


def up_to_one(value: float) -> str | None:
    """In (0, 1]."""
    return None if 0 < value <= 1 else "must be in (0, 1]"


def check_settings(instance: Any) -> None:
    """Check every field of a dataclass instance (frozen or not) against its annotation,
    choices and check; an int given for a float field becomes a float. Raises SettingError."""
    hints = typing.get_type_hints(type(instance))
    for f in dataclasses.fields(instance):
        value = _typed(getattr(instance, f.name), hints[f.name], f.name)
        object.__setattr__(instance, f.name, value)
        choices, check = f.metadata.get("choices"), f.metadata.get("check")
        if choices and value not in choices:
            raise SettingError(f.name, f"{value!r} is not one of {', '.join(map(str, choices))}")
        problem = check(value) if check is not None and value is not None else None
        if problem:
            raise SettingError(f.name, f"{problem}, got {value!r}")


def resumable_keys(cls: type) -> set[str]:
    """The fields of ``cls`` declared ``resumable``."""
    return {f.name for f in dataclasses.fields(cls) if f.metadata.get("resumable")}


def renamed_to(cls: type, key: str) -> str | None:
    """The current name of a key ``cls`` renamed, or None."""
    return getattr(cls, "RENAMED", {}).get(key)


def upgraded(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` saved by an earlier version (a checkpoint's), with renamed keys renamed."""
    return {renamed_to(cls, key) or key: value for key, value in values.items()}


def _typed(value: Any, annotation: Any, key: str) -> Any:
    union = isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union
    options = typing.get_args(annotation) if union else (annotation,)
    for option in options:
        if option is type(None) and value is None:
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise SettingError(key, f"must be a finite number, got {value!r}")
            return float(value)
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option in (str, bool) and type(value) is option:
            return value
    names = " or ".join("null" if o is type(None) else o.__name__ for o in options)
    raise SettingError(key, f"expected {names}, got {value!r}")
