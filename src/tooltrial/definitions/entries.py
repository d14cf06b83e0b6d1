"""The entries of a YAML list, found in the text without parsing it: what lets a run that
selects a few scenarios of a large file build and check only those, at a cost
proportional to the selection rather than to the file (``loading``, ``--scenario``).

Guarantees, and how they are kept:

- **Splitting never changes what a file means.** Only a plainly written block list is
  split: the list at the top level or under a ``scenarios:`` line, each entry starting
  with ``-`` at the list's indentation and every other line blank, a comment, or
  indented further (so whatever an entry holds — a tab, a block scalar — stays inside
  it). Anything else — a flow list, a document marker or directive, another top-level
  key, a line break YAML knows but a split on newlines does not — gives None, and the
  caller parses the whole file. An entry is parsed alone without its line numbers:
  whatever is wrong in it (a parse error, a bad value) loads the whole file, whose
  message names the line, so padding an entry to its place would only cost time.
- **An id is read from the text only when it cannot mean anything else**: ``id:`` on the
  entry's first line or at its keys' indentation, written once, as a quoted string
  without escapes or a plain word YAML reads as a string. Otherwise its id is None
  and the caller parses that entry to learn it.
- A chunk that does not parse alone (an alias to another entry's anchor) is the caller's
  cue to parse the whole file, as is anything unexpected in a selected entry.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

import yaml

_OTHER_BREAKS = ("\r", "\x85", "\u2028", "\u2029")
"""Line breaks to YAML 1.1 that a split on ``\\n`` would not see."""
_BLANKS = r"(?:[ ]*(?:#[^\n]*)?\n)*"
_START = re.compile(
    rf"{_BLANKS}(?P<header>scenarios:[ ]*(?:#[^\n]*)?\n{_BLANKS})?(?P<indent>[ ]*)-(?:[ ]|\n|$)"
)
"""Blank and comment lines, an optional ``scenarios:`` line, and the list's first ``-``."""
_QUOTED = re.compile(r"'([^'\n]*)'|\"([^\"\\\n]*)\"")
_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/]*")
_RESOLVED = frozenset("yYnNtTfFoO0123456789+-.~<=")
"""First characters of a plain word the safe loaders may read as something other than a
string (a bool, a number, a date, null, a merge key): only such words are resolved."""
_SAFE_WORD = r"[A-MP-SU-XZa-mp-su-xz_][A-Za-z0-9_.\-/]*"
"""A plain word that can only be a string: it starts with none of ``_RESOLVED``."""
_STR = "tag:yaml.org,2002:str"
_RESOLVER = yaml.resolver.Resolver()


@dataclass(frozen=True)
class Listing:
    """A list split into its entries: where each starts, and its id when plain."""

    source: str
    """The text, led by a newline (``split_list``)."""
    starts: list[int]
    """Each entry's offset in ``source`` (the first character of its ``-`` line)."""
    ids: list[str | None]
    """Each entry's ``id``, when the text says it unambiguously (else None: parse it)."""

    def text(self, index: int) -> str:
        """An entry alone: its lines, from its ``-`` to the next entry's."""
        at = self.starts[index]
        end = self.starts[index + 1] if index + 1 < len(self.starts) else len(self.source)
        return self.source[at:end]


def split_list(text: str) -> Listing | None:
    """The entries of the file's list (top level, or under ``scenarios:``), or None when
    the text is not written plainly enough to split safely (see the module docstring).

    Regular expressions over the whole text, each led by a newline (so the engine skips
    ahead to the next one instead of trying every character), and an entry's text cut
    only when asked for: splitting costs a small part of parsing (``bench/bench_load.py``)."""
    text = text.replace("\r\n", "\n")
    if any(mark in text for mark in _OTHER_BREAKS):
        return None
    first = _START.match(text)
    if first is None:
        return None
    k = len(first.group("indent"))
    if k and not first.group("header"):
        return None
    source = "\n" + text  # every line, the first too, follows a newline
    body = first.start("indent")  # in ``source``: the newline before the first entry
    # A line that is not blank, a comment, indented past the list, or a new entry:
    # another key, a document marker, a flow list's end... not a plain list.
    stray = re.compile(rf"\n(?![ ]{{{k}}}-(?:[ ]|\n|\Z)|[ ]{{{k + 1}}}|[ ]*(?:#|\n|\Z))")
    if stray.search(source, body):
        return None
    dash = re.compile(rf"\n[ ]{{{k}}}-(?:[ ]|\n|\Z)")
    starts = [m.start() + 1 for m in dash.finditer(source, body)]
    return Listing(source, starts, _ids(source, starts, k))


def _ids(source: str, starts: list[int], k: int) -> list[str | None]:
    """Each entry's id if written plainly at the entry's own key level: on its ``-`` line
    (the common case, read by one expression), else once at its keys' indentation. An
    entry with ``-`` alone on its first line has keys at an indentation not known here."""
    pad = " " * k
    word = re.compile(rf"\n{pad}- id:[ ]+({_SAFE_WORD})[ ]*(?=\n|\Z)")
    ids: dict[int, str | None] = {m.start() + 1: m.group(1) for m in word.finditer(source)}
    if len(ids) == len(starts):
        return [ids[at] for at in starts]
    on_dash = re.compile(rf"\n{pad}- id:([^\n]*)")
    for match in on_dash.finditer(source):
        if match.start() + 1 not in ids:
            ids[match.start() + 1] = _plain_string(match.group(1))
    keyed: dict[int, list[str]] = {}
    for match in re.finditer(rf"\n{pad}  id:([^\n]*)", source):
        keyed.setdefault(bisect.bisect_right(starts, match.start()) - 1, []).append(match.group(1))
    dash_alone = re.compile(rf"[ ]{{{k}}}-[ ]*(?:#[^\n]*)?(?:\n|\Z)")
    found: list[str | None] = []
    for index, at in enumerate(starts):
        later = keyed.get(index, [])
        if at in ids:
            found.append(ids[at] if not later else None)  # an id given twice: parse it
        elif len(later) == 1 and not dash_alone.match(source, at):
            found.append(_plain_string(later[0]))
        else:
            found.append(None)
    return found


def _plain_string(value: str) -> str | None:
    """A value YAML can only read as this string, or None."""
    if not value.startswith(" "):
        return None
    value = _without_comment(value.strip())
    quoted = _QUOTED.fullmatch(value)
    if quoted:
        return quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
    if not _WORD.fullmatch(value):
        return None
    if value[0] not in _RESOLVED:
        return value
    tag = _RESOLVER.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    return value if tag == _STR else None


def _without_comment(value: str) -> str:
    cut = value.find(" #")
    return value[:cut].rstrip() if cut >= 0 else value
