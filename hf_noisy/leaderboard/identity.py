"""Who a name is: the one place that decides which model names and submitters are the same, look the same, or
are not allowed at all.

* :func:`clean_name` -- a free-text name (model, method) NFKC-normalised, or :class:`InvalidName` if it holds a
  character that cannot be shown honestly: surrogates, unassigned or private-use code points, control, format
  and line/paragraph separators, invisible characters (Hangul fillers such as U+3164, variation selectors,
  the braille blank, ...), any space other than U+0020, or leading, trailing or doubled spaces.
* :func:`identity` -- the key two names share when they are the same name: NFKC, case-folded, NFKC again
  (``"Mask2Former"`` and ``"MASK2FORMER"`` are one name, ``"模型一"`` and ``"网络"`` are two).
* :func:`skeleton` -- the Unicode TR39 skeleton (what a name looks like): two names with equal skeletons but
  different identities are confusable (Cyrillic ``"М2F R50"`` next to Latin ``"M2F R50"``).
* :func:`name_key` -- an ASCII path component that is collision-free: a readable slug plus 16 hex digits of
  the SHA-256 of the identity.
* :func:`submitter_key` -- submitters (Hub user names, ASCII) compared case-insensitively.

The confusables data is Unicode's ``confusables.txt`` as shipped by the ``confusable-homoglyphs`` package (MIT,
in the ``leaderboard`` extra; read from the installed package, never fetched).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache

from ..errors import HfNoisyError

__all__ = ["InvalidName", "clean_name", "identity", "name_key", "skeleton", "skeleton_key", "submitter_key"]

#: Code points that render as nothing (or as blank space) although their general category is a letter, mark
#: or symbol: Hangul fillers, Khmer inherent vowels, Mongolian variation selectors and vowel separator,
#: combining grapheme joiner, variation selectors, the braille blank and tag characters.
_INVISIBLE = re.compile("[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u2800\u3164\uffa0\ufe00-\ufe0f"
                        "\U000e0000-\U000e0fff]")
#: General categories refused: Cs surrogate, Cn unassigned, Co private use, Cc control, Cf format (zero-width
#: joiners, bidi controls, ...), Zl/Zp line/paragraph separators.
_REFUSED_CATEGORIES = {"Cs": "a surrogate", "Cn": "unassigned", "Co": "private-use", "Cc": "a control character",
                       "Cf": "a format character", "Zl": "a line separator", "Zp": "a paragraph separator"}


class InvalidName(HfNoisyError):
    """A name that is refused; the message names the field and the code point."""


def clean_name(field: str, value: str) -> str:
    """``value`` NFKC-normalised, or :class:`InvalidName` naming ``field`` and the first bad code point.

    Checked before normalising (NFKC would hide some, e.g. U+3164 becomes U+1160) and after (normalising may
    produce doubled spaces from compatibility characters).
    """
    for text in (value, unicodedata.normalize("NFKC", value) if _encodable(value) else value):
        for ch in text:
            why = _REFUSED_CATEGORIES.get(unicodedata.category(ch))
            if why is None and _INVISIBLE.match(ch):
                why = "invisible"
            if why is None and ch.isspace() and ch != " ":
                why = "a space other than U+0020"
            if why is not None:
                raise InvalidName(f"meta '{field}': U+{ord(ch):04X} is {why}; not allowed in a name")
        if text != text.strip() or "  " in text:
            raise InvalidName(f"meta '{field}': leading, trailing or repeated spaces in {text!r}")
    return unicodedata.normalize("NFKC", value)


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def identity(name: str) -> str:
    """The key of the uniqueness rule and of retention: NFKC, case-folded, NFKC again (Unicode's
    NFKC_Casefold without removing default-ignorables, which :func:`clean_name` refuses)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


@lru_cache(maxsize=1)
def _prototypes() -> dict[str, str]:
    """Each confusable code point (or sequence) -> the prototype of its TR39 class.

    ``confusable-homoglyphs`` keeps each ``confusables.txt`` line in both directions, so each class is a star:
    the prototype linked to its sources. Its centre is the prototype; a class of two is told apart by the
    rule the file follows (a multi-character prototype, else the lower code point)."""
    try:
        from confusable_homoglyphs.utils import load
    except ImportError:  # pragma: no cover - the leaderboard extra has it
        raise HfNoisyError("names are checked for confusables with the 'confusable-homoglyphs' package: "
                           "pip install 'hf-noisy[leaderboard]'") from None
    links: dict[str, set[str]] = {}
    for key, entries in load("confusables.json").items():
        for entry in entries:
            # The file's displays wrap right-to-left text in U+200E/U+200F marks; they are not part of the text.
            a, b = (s.replace("\u200e", "").replace("\u200f", "") for s in (key, entry["c"]))
            if a and b and a != b:
                links.setdefault(a, set()).add(b)
                links.setdefault(b, set()).add(a)
    prototype = {}
    for node, neighbours in links.items():
        if len(node) != 1 or len(neighbours) != 1:
            continue  # a centre (or a sequence): it is a prototype
        (other,) = neighbours
        if len(links[other]) > 1 or len(other) > 1 or ord(other) < ord(node):
            prototype[node] = other
    return prototype


def skeleton(name: str) -> str:
    """The TR39 skeleton of ``name``: NFD, every code point replaced by its prototype, NFD; repeated until it
    no longer changes. Compare skeletons of :func:`identity` keys to ignore case too."""
    table = _prototypes()
    current = unicodedata.normalize("NFD", name)
    for _ in range(4):
        mapped = unicodedata.normalize("NFD", "".join(table.get(ch, ch) for ch in current))
        if mapped == current:
            break
        current = mapped
    return current


def name_key(name: str) -> str:
    """An ASCII path component for a model name: slug (lower-case ASCII letters and digits, runs of anything
    else as one ``-``, at most 40 characters, ``model`` if none) ``-`` 16 hex digits of SHA-256 of
    :func:`identity`. Two names share a key exactly when they share an identity (up to a 64-bit hash)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-") or "model"
    return f"{slug}-{hashlib.sha256(identity(name).encode('utf-8')).hexdigest()[:16]}"


def skeleton_key(text: str) -> str:
    """32 hex digits of SHA-256 of the skeleton of ``text``: a file name for the name index (which keys each
    name by the skeleton of the name as written and of its identity, so case cannot hide a look-alike)."""
    return hashlib.sha256(skeleton(text).encode("utf-8")).hexdigest()[:32]


def submitter_key(submitter: str) -> str:
    """Submitters are Hub user names, which the Hub treats case-insensitively: the lower-case name."""
    return submitter.lower()
