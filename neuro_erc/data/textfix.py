"""Repair of cp1252 mojibake in dialogue text.

Copies of MELD (and Python 2 pickles) in the wild spell ’ in three wrong ways; each has an
exact inverse, applied in this order by :func:`repair_text`:

1. **Raw cp1252 bytes** in a UTF-8 file (``b"\\x92"``). The file is decoded as UTF-8 with
   ``errors="surrogateescape"``, so each byte that is not valid UTF-8 survives as a lone
   surrogate U+DC80–U+DCFF; we decode those bytes as cp1252. Valid UTF-8 in the same field
   is kept: the fallback is per character run, not per file.
2. **Double encoding** (``"â€™"``): UTF-8 bytes decoded as cp1252 (or Latin-1) and
   encoded again. A lead character ``Â``/``Ã`` (bytes C2/C3: Latin-1 letters) followed by
   one, or ``â`` (E2: punctuation ’ “ ” … — –) followed by two, characters whose
   cp1252/Latin-1 byte is a UTF-8 continuation byte (0x80–0xBF) is turned back into those
   bytes and decoded as UTF-8; a run that does not decode is left alone. Restricting the
   leads to C2/C3/E2 covers English text and keeps false positives (a real "é…") out.
3. **C1 control characters** (``"\\x92"``): a cp1252 byte decoded as Latin-1. Each
   U+0080–U+009F becomes its cp1252 character; the five bytes cp1252 leaves undefined
   (81, 8D, 8F, 90, 9D) carry no text and are dropped.
"""
from __future__ import annotations

import re


def _byte_of_char() -> dict[str, int]:
    """Map each character a byte 0x80–0xFF turns into under cp1252 or Latin-1 back to that byte."""
    table: dict[str, int] = {}
    for b in range(0x80, 0x100):
        table[chr(b)] = b  # the Latin-1 reading
        try:
            table[bytes([b]).decode("cp1252")] = b
        except UnicodeDecodeError:
            pass  # undefined in cp1252; the Latin-1 reading above stands
    return table


_BYTE_OF = _byte_of_char()
_CONTINUATION = "".join(re.escape(c) for c, b in _BYTE_OF.items() if 0x80 <= b <= 0xBF)
_DOUBLE_ENCODED = re.compile(f"[ÂÃ][{_CONTINUATION}]|â[{_CONTINUATION}]{{2}}")
_ESCAPED_BYTES = re.compile("[\udc80-\udcff]+")
_C1 = re.compile("[\x80-\x9f]")


def _cp1252(raw: bytes) -> str:
    return "".join(bytes([b]).decode("cp1252", errors="ignore") for b in raw)


def _undo_double(match: re.Match) -> str:
    try:
        return bytes(_BYTE_OF[c] for c in match.group()).decode("utf-8")
    except UnicodeDecodeError:
        return match.group()


def repair_text(text: str) -> str:
    """Undo the three kinds of cp1252 mojibake described in the module docstring."""
    text = _ESCAPED_BYTES.sub(lambda m: _cp1252(bytes(ord(c) - 0xDC00 for c in m.group())), text)
    text = _DOUBLE_ENCODED.sub(_undo_double, text)
    return _C1.sub(lambda m: _cp1252(bytes([ord(m.group())])), text)
