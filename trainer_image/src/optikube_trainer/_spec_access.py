"""Read spec blocks whether they arrive as JSON mappings or as typed config objects.

The run config is parsed elsewhere; techniques only need a handful of fields, so they read them
through this one helper instead of depending on the parser's classes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def spec_get(block: Any, name: str, default: Any = None) -> Any:
    """Return field `name` (camelCase) of a mapping or object, accepting snake_case too."""
    if block is None:
        return default
    for key in (name, _snake(name)):
        if isinstance(block, Mapping):
            if key in block and block[key] is not None:
                return block[key]
        elif getattr(block, key, None) is not None:
            return getattr(block, key)
    return default


def as_plain(block: Any) -> Any:
    """Turn a typed config object into plain JSON-like data (for summaries and specs)."""
    if block is None or isinstance(block, str | int | float | bool):
        return block
    if isinstance(block, Mapping):
        return {str(k): as_plain(v) for k, v in block.items()}
    if isinstance(block, list | tuple):
        return [as_plain(v) for v in block]
    dump = getattr(block, "model_dump", None)
    if callable(dump):
        return dump(by_alias=True, exclude_none=True)
    if hasattr(block, "__dataclass_fields__"):
        return {k: as_plain(getattr(block, k)) for k in block.__dataclass_fields__}
    return block
