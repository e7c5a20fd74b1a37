"""Session names people type: normalised, checked, and compared the way people read them.

- NFC, so "é" typed two ways is one name; whitespace runs (tabs, newlines) become one space.
- Invisible characters are removed (zero-width space and joiners, bidi embeddings and
  overrides, soft hyphen, BOM, variation selectors, Hangul fillers...): they make a name
  display as something it is not. A name made only of them is blank.
- Control characters (NUL, ESC, ...) and lone surrogates are refused: PostgreSQL cannot store
  NUL, and neither belongs in a name.
- "Session YYYY-MM-DD" is kept for the automatic daily sessions, in any case and in any
  look-alike spelling: "Ѕession 2026-11-30" with a Cyrillic S, full-width digits, "5ession".
- Names are one name whatever their case: name_key() is what uniqueness compares.
"""

from __future__ import annotations

import re
import unicodedata

from scanner_app.platform.errors import BadRequest

MAX_NAME_LENGTH = 120

# Invisible but not in category Cf: fillers that render as blank space of no width, the
# combining grapheme joiner, and variation selectors.
_INVISIBLE_EXTRA = {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0}
_VARIATION_SELECTORS = ((0x180B, 0x180F), (0xFE00, 0xFE0F), (0xE0100, 0xE01EF))

# Letters that look like the Latin letters of "session" (after NFKC and casefold), from
# Unicode's confusables data (TR39). Only the reserved pattern matters, so only these.
_LOOKALIKES = {
    "s": "\u0455\ua731\u01bd\u0282\U00010296",  # Cyrillic dze, small capital s, ...
    "e": "\u0435\u04bd\u212e\uab32\u0454\u0258\u1d07\u03b5",  # Cyrillic ie, epsilon, ...
    "i": "\u0456\u0269\u03b9\u0131\u04cf\u1fbe\u026a\u0049\u006c\u007c\u01c0\u0399\u0406"
         "\u04c0\u2160\u217c\u0196",  # Cyrillic i, dotless i, iota, l, |, Roman one, ...
    "o": "\u043e\u03bf\u0585\u1d0f\u2c9f\u03c3\u0ed0\u0c66\u0ce6\u0d20",  # Cyrillic o, omicron
    "n": "\u0578\u057c\u0274\u03b7\u043f\u03bd",  # Armenian vo, small capital n, nu
}
_FOLD = {ord(c): latin for latin, chars in _LOOKALIKES.items() for c in chars}
# Digits that stand in for letters once the word is folded: 5ession, sess1on, sessi0n.
_WORD = re.compile(r"^[s5]e[s5][s5][i1][o0]n[ _]*[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _invisible(char: str) -> bool:
    point = ord(char)
    if unicodedata.category(char) == "Cf" or point in _INVISIBLE_EXTRA:
        return True
    return any(low <= point <= high for low, high in _VARIATION_SELECTORS)


def normalise(raw: object) -> str:
    """The name as stored, or BadRequest with a sentence saying what to type instead."""
    if not isinstance(raw, str):
        raise BadRequest("Give the session a name, for example 'Trial ABC-123'.",
                         code="invalid_name")
    text = unicodedata.normalize("NFC", raw)
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char in "\t\n\r" or (char.isspace() and category != "Cc"):
            kept.append(" ")  # typed or pasted line breaks and tabs: one space
        elif category in ("Cc", "Cs"):
            raise BadRequest("Session names cannot contain control characters; type the "
                             "name again using letters, digits and punctuation.",
                             code="invalid_name")
        elif not _invisible(char):
            kept.append(char)
    # Again NFC: removing an invisible character can leave a letter next to its accent.
    name = unicodedata.normalize("NFC", " ".join("".join(kept).split()))
    if not name:
        raise BadRequest("Give the session a name, for example 'Trial ABC-123'.",
                         code="invalid_name")
    if len(name) > MAX_NAME_LENGTH:
        raise BadRequest(
            f"The name is {len(name)} characters long; keep it to {MAX_NAME_LENGTH} or fewer.",
            code="invalid_name",
        )
    if looks_like_auto_name(name):
        raise BadRequest(
            "Names like 'Session 2026-01-31' are kept for the automatic daily sessions; "
            "choose another name.",
            code="invalid_name",
        )
    return name


def _skeleton(name: str) -> str:
    """Fold compatibility forms (full-width, math letters), case and look-alike letters;
    every kind of dash becomes '-' and every decimal digit its ASCII digit."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    out = []
    for char in folded:
        if unicodedata.category(char) == "Pd" or char in "\u2212\u2010\u2011":
            out.append("-")
        elif char.isdecimal():
            out.append(str(unicodedata.decimal(char)))
        else:
            out.append(char)
    return "".join(out).translate(_FOLD)


def looks_like_auto_name(name: str) -> bool:
    return bool(_WORD.match(_skeleton(name)))


def name_key(name: str) -> str:
    """What two names are compared by: "alpha" and "Alpha" are one name."""
    return unicodedata.normalize("NFC", name).casefold()
