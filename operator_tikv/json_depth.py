"""A nesting-depth limit for JSON read as a stream, checked at C speed before the parser sees it.

ijson's C parser builds a path prefix (`regions.item.item...`) for every nesting level, so a
body of 100 KB that opens 100,000 arrays or objects costs memory and time quadratic in the
depth: 10 GiB and 20 s here for `{"x":{"a":{"a":...` (100,000 levels), more than a minute for
`[[[[...`. A PD answer is never deeper than a handful of levels. `DepthLimitedStream` wraps the
stream the parser reads and raises `ValueError` as soon as the body opens more than
`max_depth` levels, before the parser is handed those bytes.

How it stays cheap on an 80 MB list: each chunk is reduced in C code (`bytes.translate` and
regular expressions): when it has no backslash (PD's keys are hex), everything but quotes and
brackets is dropped first; complete strings are removed (brackets inside strings do not count),
then the quotes, then matched `[]`/`{}` pairs are peeled one level per pass. A legitimate chunk
needs as many passes as its own nesting (about five for a region list); after `max_depth`
passes the chunk is too deep. What is left is closers followed by openers, which moves the
running depth. A string that continues into the next chunk is carried as its state only (the
opening quote and a pending backslash), so a huge string is never scanned twice.
"""

from __future__ import annotations

import re
from typing import Protocol

__all__ = ["DEFAULT_MAX_DEPTH", "DepthLimitedStream", "Readable"]

DEFAULT_MAX_DEPTH = 64
"""Deep enough for any PD body (a region list nests about six levels), far from quadratic."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_PLAIN_STRING = re.compile(rb'"[^"]*"')
_ALL_BYTES = bytes(range(256))
_NOT_SYNTAX = bytes(b for b in _ALL_BYTES if b not in b'"[]{}')
_NOT_BRACKET = bytes(b for b in _ALL_BYTES if b not in b"[]{}")
_PAIR = re.compile(rb"\[\]|\{\}")
_TRAILING_BACKSLASHES = re.compile(rb"\\+\Z")


class Readable(Protocol):
    """What ijson reads from: `read(size)` returning bytes, empty at the end."""

    def read(self, size: int = -1, /) -> bytes: ...


class DepthLimitedStream:
    """Passes `read()` through, raising ValueError once the JSON nests deeper than
    `max_depth` (counted outside strings)."""

    def __init__(self, stream: Readable, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self._stream = stream
        self._max_depth = max_depth
        self._depth = 0
        self._open_string = b""  # b'"' (inside a string) or b'"\\' (and a backslash pending)

    def read(self, size: int = -1, /) -> bytes:
        data = self._stream.read(size)
        if data:
            self._check(data)
        return data

    def _check(self, data: bytes) -> None:
        outside, self._open_string = _outside_strings(self._open_string + data)
        brackets = outside.translate(None, _NOT_BRACKET)
        inner = 0
        while brackets:
            peeled = _PAIR.sub(b"", brackets)
            if peeled == brackets:
                break
            brackets = peeled
            inner += 1
            if inner > self._max_depth:
                break
        closers = brackets.count(b"]") + brackets.count(b"}")
        openers = len(brackets) - closers
        deepest = max(self._depth, self._depth - closers + openers) + inner
        if deepest > self._max_depth:
            raise ValueError(
                f"the JSON nests more than {self._max_depth} levels deep: "
                "no PD answer does, so it is not read"
            )
        self._depth = max(0, self._depth - closers + openers)


def _outside_strings(text: bytes) -> tuple[bytes, bytes]:
    """`text` without its complete strings, and the state of a string it leaves open."""
    if b"\\" in text:  # escapes: strings must be read as JSON reads them
        outside = _STRING.sub(b"", text)
        quote = outside.find(b'"')
        if quote == -1:
            return outside, b""
        # the first quote left opens a string that goes on in the next chunk
        trailing = _TRAILING_BACKSLASHES.search(outside, quote + 1)
        pending = trailing is not None and len(trailing.group()) % 2 == 1
        return outside[:quote], b'"\\' if pending else b'"'
    # the usual case: only quotes and brackets matter, so keep only those
    syntax = text.translate(None, _NOT_SYNTAX)
    open_string = b""
    if syntax.count(b'"') % 2:  # strings pair quotes in order: the last one opens a string
        syntax, open_string = syntax[: syntax.rfind(b'"')], b'"'
    outside = syntax.replace(b'""', b"")
    if b'"' in outside:  # a bracket inside a string (a run of quotes was odd): pair properly
        outside = _PLAIN_STRING.sub(b"", syntax)
    return outside, open_string
