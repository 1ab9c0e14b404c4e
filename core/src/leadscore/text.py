"""Text for people. Lead data, rulepacks and plugins are untrusted, so every human-readable line
leadscore prints goes through :func:`printable`: terminal control characters and line breaks in
a value cannot recolour the terminal, move the cursor or forge a line of output.
"""

from __future__ import annotations

# C0 controls, DEL and C1 controls (ESC starts terminal sequences, CR rewrites the line, LF
# starts a new one), and the Unicode line and paragraph separators, shown as Python escapes.
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPES = {code: _NAMED.get(chr(code), f"\\x{code:02x}") for code in (*range(0x20), *range(0x7F, 0xA0))}
_ESCAPES.update({0x2028: "\\u2028", 0x2029: "\\u2029"})
# Bidirectional overrides reorder what follows them on screen.
_ESCAPES.update({code: f"\\u{code:04x}" for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))})


def printable(text: str) -> str:
    """``text`` with control characters and line breaks escaped (``\\x1b``, ``\\n``), one line."""
    return text.translate(_ESCAPES)


__all__ = ["printable"]
