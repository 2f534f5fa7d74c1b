"""Plan overrides from the command line: ``--set network.width=0.5`` for any task's plan."""

from __future__ import annotations

import copy
import json

from medsight.errors import FormatError

__all__ = ["apply_overrides"]


def apply_overrides(plan: dict, overrides: list[str]) -> dict:
    """``["network.width=0.5", "epochs=30"]`` -> a copy of `plan` with those fields set (JSON values)."""
    plan = copy.deepcopy(plan)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise FormatError(f"override {item!r} is not KEY=VALUE", hint="e.g. --set network.width=0.5")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text  # a bare word: a string
        node = plan
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise FormatError(
                    f"override {item!r}: plan has no section {part!r}",
                    hint=f"Sections: {', '.join(k for k, v in plan.items() if isinstance(v, dict))}",
                )
            node = node[part]
        if parts[-1] not in node:
            import difflib

            close = difflib.get_close_matches(parts[-1], list(node), n=1)
            maybe = f"; did you mean {close[0]!r}?" if close else ""
            raise FormatError(f"override {item!r}: no plan field {key!r}{maybe}")
        node[parts[-1]] = value
    return plan
