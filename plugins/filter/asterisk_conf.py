"""Print a value into an Asterisk config file so that Asterisk reads it back intact.

Asterisk's config parser (main/config.c) ends a value at the first `;` (a comment) unless a
backslash comes right before it, and drops that backslash; it does nothing else to a value
(no quotes, no other escapes). So `a;b\\c` is written `a\\;b\\c`. Line breaks and the
leading and trailing spaces the parser strips cannot be written; the validation refuses
them before any template is printed (lab_validate.secret_problem).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def asterisk_conf_value(value: Any) -> str:
    """`value` as the right-hand side of `key=value` in an Asterisk config file."""
    text = str(value)
    if any(c in text for c in "\r\n"):
        raise ValueError("a value with a line break cannot be written into an Asterisk config file")
    return text.replace(";", "\\;")


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"asterisk_conf_value": asterisk_conf_value}
