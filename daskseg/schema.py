"""Check configuration values against type hints, with errors that name the key, the value and the type.

A small schema checker for the YAML configs daskseg reads (the training job): the schema is a
dataclass's own field types (``check_fields``) or a ``{name: type}`` dict (``check_mapping``), and
bounds come from the field's metadata (``field(metadata={"min": 1})``). Supported types: ``int``
(not ``bool``, not ``2.7``), ``float`` (ints accepted, converted), ``bool``, ``str``, ``None``,
``Any``, ``list[T]``, ``tuple[T, ...]``, ``dict[str, T]`` and unions (``X | None``).

    check_value(2.7, int, "iterations")   # SchemaError: iterations is 2.7 (a float), expected a whole number
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from .errors import SchemaError

_NAMES = {int: "a whole number", float: "a number", bool: "true or false", str: "a string", type(None): "null"}


def describe(hint: Any) -> str:
    """What ``hint`` asks for, in words: ``list[int]`` → 'a list of whole numbers'."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return "anything"
    if hint in _NAMES:
        return _NAMES[hint]
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin in (list, tuple):
        inner = args[0] if args else Any
        return f"a list of {_plural(describe(inner))}"
    if origin in (dict, Mapping):
        return "a mapping of keys to " + _plural(describe(args[1] if len(args) > 1 else Any))
    return getattr(hint, "__name__", str(hint))


def _plural(words: str) -> str:
    for one, many in (("a whole number", "whole numbers"), ("a number", "numbers"), ("a string", "strings"),
                      ("a list of", "lists of"), ("a mapping", "mappings")):
        words = words.replace(one, many)
    return words


def _found(value: Any) -> str:
    kind = {bool: "true/false", int: "a whole number", float: "a float", str: "a string", list: "a list",
            dict: "a mapping", type(None): "null"}.get(type(value), type(value).__name__)
    return f"{value!r} ({kind})"


def check_value(value: Any, hint: Any, where: str) -> Any:
    """``value`` if it is of type ``hint`` (ints as floats where a float is asked for, lists as
    tuples where a tuple is), else a ``SchemaError`` naming ``where``, the value and the type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return check_value(value, option, where)
            except SchemaError:
                continue
        raise SchemaError(f"{where} is {_found(value)}, expected {describe(hint)}")
    if hint is type(None) or hint is None:
        if value is None:
            return None
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin in (list, tuple):
        if isinstance(value, (list, tuple)):
            inner = args[0] if args else Any
            items = [check_value(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
            return tuple(items) if origin is tuple else items
    elif origin in (dict, Mapping):
        if isinstance(value, Mapping):
            inner = args[1] if len(args) > 1 else Any
            return {k: check_value(v, inner, f"{where}.{k}") for k, v in value.items()}
    else:
        raise TypeError(f"check_value cannot check type {hint!r}")
    raise SchemaError(f"{where} is {_found(value)}, expected {describe(hint)}")


def check_bounds(value: Any, where: str, minimum: float | None = None) -> None:
    """Raise a ``SchemaError`` if the number ``value`` is below ``minimum``."""
    if minimum is not None and isinstance(value, (int, float)) and value < minimum:
        raise SchemaError(f"{where} is {value!r}, expected at least {minimum!r}")


def check_mapping(
    doc: Any, schema: Mapping[str, Any], where: str, required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``doc`` checked against ``{key: type}``: a mapping with no unknown keys, the ``required`` ones
    present, each value of its type. Returns the checked (converted) values."""
    if not isinstance(doc, Mapping):
        raise SchemaError(f"{where} is {_found(doc)}, expected a mapping of {sorted(schema)}")
    unknown = sorted(str(k) for k in set(doc) - set(schema))
    if unknown:
        raise SchemaError(f"{where}: unknown keys {unknown}; known keys are {sorted(schema)}")
    missing = [k for k in required if k not in doc]
    if missing:
        raise SchemaError(f"{where}: missing keys {missing}")
    prefix = f"{where}." if where else ""
    return {k: check_value(v, schema[k], f"{prefix}{k}") for k, v in doc.items()}


def check_fields(obj: Any, where: str = "") -> None:
    """Check (and convert in place) every field of the dataclass instance ``obj`` against its type
    hint and its ``metadata["min"]``; a ``metadata["example"]`` is shown in the error."""
    hints = typing.get_type_hints(type(obj))
    prefix = f"{where}." if where else ""
    for f in dataclasses.fields(obj):
        name = f"{prefix}{f.name}"
        try:
            value = check_value(getattr(obj, f.name), hints[f.name], name)
            check_bounds(value, name, f.metadata.get("min"))
        except SchemaError as e:
            example = f.metadata.get("example")
            raise type(e)(f"{e}, e.g. {f.name}: {example}" if example else str(e)) from None
        object.__setattr__(obj, f.name, value)
