"""Text from files and command lines made safe to print on a terminal, in one line.

Host names, device names, case keys, reasons and file names come from files anyone can write.
Printed raw, an escape sequence (`\\x1b[2J`) would clear or rewrite the screen, a newline would
forge a second line, a bidi override would reorder what the reader sees, and a lone surrogate
(from a non-UTF-8 file name or a `\\ud800` escape) would make `print` raise UnicodeEncodeError.
`printable` replaces each such character with `?`.
"""

from __future__ import annotations

import re

# C0 controls (tab, newline, ESC, ...), DEL and C1 controls, lone UTF-16 surrogates, the Unicode
# line and paragraph separators, and the bidirectional-text controls.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """`text` as one terminal-safe line: every control, surrogate or bidi character becomes '?'."""
    return _UNSAFE.sub("?", str(text))


def short_repr(value: object, limit: int = 60) -> str:
    """repr(value) cut to `limit` characters: a bad value quoted in a one-line error, however long."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
