"""One way to report a bad configuration value, for the kiosk (device/config.py), its vision settings
(device/vision/config.py), the gateway (gateway/config.py) and its auth (gateway/auth_config.py):
``config error: [section] key: problem``, e.g. ``config error: [rating] scale: must be 3 or 5, got 4``.

It lives in contract/ because that is the only code the kiosk and the gateway share; it is not part
of the wire format.

:func:`from_validation` turns the first problem of a pydantic ``ValidationError`` into that form,
with the same words for the same problem everywhere ("required key is missing", "unknown key
(misspelt?)", "must be between 1 and 999, got 0", "must be an integer, got '30'"). The offending
value is shown only when it is a short scalar of a key that is not a secret (``SECRET_KEYS``): these
messages end up in logs and on terminals.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

SECRET_KEYS = frozenset({"secret_key", "password", "password_hash", "token_sha256"})
_TYPE_NAMES = {
    "int_type": "an integer", "int_parsing": "an integer", "float_type": "a number",
    "float_parsing": "a number", "string_type": "a string", "bool_type": "true or false",
    "bool_parsing": "true or false", "dict_type": "a table", "model_type": "a table",
    "list_type": "a list", "tuple_type": "a list", "path_type": "a path",
}


class ConfigError(ValueError):
    """A configuration problem; ``str()`` is the message to print. ``section`` is empty for a
    top-level key (the gateway's ``data_dir``), ``key`` for a problem with a whole section or file."""

    def __init__(self, section: str, key: str = "", problem: str = "") -> None:
        where = f"[{section}] {key}" if section and key else (f"[{section}]" if section else key)
        super().__init__(f"config error: {where}: {problem}")
        self.section, self.key, self.problem = section, key, problem


def from_validation(
    exc: ValidationError, section: str | None = None, model: type[BaseModel] | None = None
) -> ConfigError:
    """The first problem of ``exc`` as a :class:`ConfigError`.

    With ``section``: ``model`` validated that one section, so the error's location is a key inside
    it. Without: ``model`` is the whole file and the location's first part names the section (or a
    top-level key). ``model`` supplies the bounds for "must be between lo and hi"."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    if section is None:
        section, loc = (loc[0], loc[1:]) if loc else ("", [])
        if not loc:  # the section itself (or a top-level scalar key) is wrong
            return _whole_section(err, section, model)
        model = _section_model(model, section)
    return ConfigError(section, ".".join(loc), problem(err, model, loc))


def _whole_section(err: Any, name: str, model: type[BaseModel] | None) -> ConfigError:
    if err["type"] == "extra_forbidden":
        fields = model.model_fields.items() if model is not None else ()
        known = ", ".join(sorted(n for n, info in fields if not info.exclude))
        return ConfigError(name, "", f"unknown section (misspelt?); known: {known}")
    info = model.model_fields.get(name) if model is not None else None
    table = _unwrap(info.annotation)[0] if info is not None else None
    if not (get_origin(table) is dict or (isinstance(table, type) and issubclass(table, BaseModel))):
        return ConfigError("", name, problem(err, model, [name]))  # a top-level key such as data_dir
    if err["type"] in ("model_type", "dict_type", "model_attributes_type"):
        return ConfigError(name, "", f"must be a table, got {type(err['input']).__name__}")
    return ConfigError(name, "", problem(err, None, []))


def problem(err: Any, model: type[BaseModel] | None, loc: Sequence[str]) -> str:
    """One pydantic error in the project's words; ``loc`` (inside ``model``) finds the bounds."""
    kind, ctx = err["type"], err.get("ctx") or {}
    got = _got(err, loc)
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key (misspelt?)"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return _bound_problem(kind, ctx, bounds(model, loc)) + got
    if kind == "finite_number":
        return "must be a finite number" + got
    if kind in ("string_too_long", "too_long"):
        size = len(err["input"]) if hasattr(err["input"], "__len__") else "?"
        unit = "characters" if kind == "string_too_long" else "entries"
        return f"at most {ctx.get('max_length')} {unit}, got {size}"
    if kind in ("string_too_short", "too_short"):
        unit = "characters" if kind == "string_too_short" else "entries"
        return f"at least {ctx.get('min_length')} {unit}" + got
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}" + got
    if kind == "literal_error":
        return f"must be {str(ctx.get('expected', '')).replace(chr(39), '')}" + got
    if kind in _TYPE_NAMES:
        return f"must be {_TYPE_NAMES[kind]}" + got
    return str(err["msg"]).removeprefix("Value error, ") + (_paren(got) if kind != "value_error" else "")


def _bound_problem(kind: str, ctx: dict[str, Any], limits: dict[str, Any]) -> str:
    lo = limits.get("ge", ctx.get("ge"))
    hi = limits.get("le", ctx.get("le"))
    if kind in ("greater_than_equal", "less_than_equal") and lo is not None and hi is not None:
        return f"must be between {lo} and {hi}"
    if kind == "greater_than":
        return f"must be > {limits.get('gt', ctx.get('gt'))}"
    if kind == "less_than":
        return f"must be < {limits.get('lt', ctx.get('lt'))}"
    return f"must be >= {lo}" if kind == "greater_than_equal" else f"must be <= {hi}"


def _got(err: Any, loc: Sequence[str]) -> str:
    """``, got <value>`` for a short non-secret scalar; nothing otherwise."""
    value = err.get("input")
    if any(str(p) in SECRET_KEYS for p in (*loc, *err["loc"])) or isinstance(value, dict | list | tuple):
        return ""
    text = repr(value)
    return f", got {text}" if len(text) <= 80 else f", got {text[:77]}..."


def _paren(got: str) -> str:
    return f" ({got.removeprefix(', ')})" if got else ""


def _section_model(model: type[BaseModel] | None, name: str) -> type[BaseModel] | None:
    info = model.model_fields.get(name) if model is not None else None
    ann = _unwrap(info.annotation)[0] if info is not None else None
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def _unwrap(ann: Any) -> tuple[Any, list[Any]]:
    """(the type under Annotated/Optional, the constraint metadata found on the way)."""
    meta: list[Any] = []
    while True:
        origin = get_origin(ann)
        if origin is Annotated:
            ann, *extra = get_args(ann)
            for m in extra:
                meta.extend(m.metadata if isinstance(m, FieldInfo) else [m])
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(ann) if a is not type(None)]
            if len(args) != 1:
                return ann, meta
            ann = args[0]
        else:
            return ann, meta


def bounds(model: type[BaseModel] | None, loc: Sequence[str]) -> dict[str, Any]:
    """The ``ge``/``le``/``gt``/``lt`` constraints of the value at ``loc`` inside ``model``
    (through nested models, dict values and list items)."""
    ann: Any = model
    meta: list[Any] = []
    for part in loc:
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            info = ann.model_fields.get(part)
            if info is None:
                return {}
            ann, meta = _unwrap(info.annotation)
            meta = list(info.metadata) + meta
        elif get_origin(ann) in (dict, list, tuple):
            args = get_args(ann)
            ann, meta = _unwrap(args[-1] if get_origin(ann) is dict else args[0]) if args else (None, [])
        else:
            return {}
    names = ("ge", "le", "gt", "lt")
    return {k: getattr(m, k) for m in meta for k in names if getattr(m, k, None) is not None}
