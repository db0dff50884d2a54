"""JSON that PostgreSQL can store.

`json.loads` accepts what `jsonb` (and `text`) refuse: a NUL character (`\\u0000`), a lone UTF-16
surrogate (`\\ud800`), and numbers beyond a double (`1e999` becomes `inf`, which the encoder
writes as `Infinity`). Deep nesting is refused earlier, by `core.parsers.JSONParser`.

- `json_storable_problem(value)` says what in a value cannot be stored and where (validation:
  the caller answers 400 naming the field).
- `json_storable(value)` is a copy that can be stored (the raw intake log keeps what was sent,
  with those characters replaced by U+FFFD and non-finite numbers written as text).
"""

import math
import re
from typing import Any

MAX_JSON_DEPTH = 64

_UNSTORABLE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def text_problem(value: str) -> str | None:
    """Why PostgreSQL cannot store this text, or None."""
    found = _UNSTORABLE_CHARACTERS.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000)"
    return "contains an unpaired surrogate (\\ud800-\\udfff)"


def _path(parts: tuple) -> str:
    return ".".join(str(part) for part in parts)


def json_storable_problem(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """The first thing in `value` PostgreSQL's jsonb cannot store, as "<path> <what>", or None.
    Walks iteratively: a value nested deeper than `max_depth` is reported, never recursed into."""
    stack: list[tuple[Any, tuple]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        where = f"“{_path(path)}”" if path else "The value"
        if len(path) > max_depth:
            return f"{where} is nested deeper than {max_depth} levels."
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return f"{where} {problem}, which cannot be stored."
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"{where} is not a finite number, which cannot be stored."
        elif isinstance(item, dict):
            for key, child in item.items():
                key_problem = text_problem(key) if isinstance(key, str) else None
                if key_problem:
                    return f"A name in {where if path else 'the value'} {key_problem}, which cannot be stored."
                stack.append((child, (*path, key)))
        elif isinstance(item, list | tuple):
            stack.extend((child, (*path, index)) for index, child in enumerate(item))
    return None


def json_depth_exceeds(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> tuple | None:
    """The path of the first container nested deeper than `max_depth`, or None (iterative)."""
    stack: list[tuple[Any, tuple]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict | list):
            if len(path) >= max_depth:
                return path
            children = item.items() if isinstance(item, dict) else enumerate(item)
            stack.extend((child, (*path, key)) for key, child in children)
    return None


def json_storable(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """A copy of `value` PostgreSQL can store: NUL and lone surrogates become U+FFFD (in names too),
    non-finite numbers become the text "Infinity", "-Infinity" or "NaN", and anything nested
    deeper than `max_depth` becomes None."""
    return _storable(value, max_depth)


def _storable(value: Any, depth_left: int) -> Any:
    if isinstance(value, str):
        return _UNSTORABLE_CHARACTERS.sub(REPLACEMENT, value) if _UNSTORABLE_CHARACTERS.search(value) else value
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict | list | tuple):
        if depth_left <= 0:
            return None
        if isinstance(value, dict):
            return {
                (_storable(key, depth_left) if isinstance(key, str) else key): _storable(child, depth_left - 1)
                for key, child in value.items()
            }
        return [_storable(child, depth_left - 1) for child in value]
    return value
