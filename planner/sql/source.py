"""Split a migration file into statements with positions, using PostgreSQL's own grammar (pglast).

A file that parses is split exactly as PostgreSQL would run it (dollar quotes, BEGIN ATOMIC bodies,
comments). A file that does not parse is split around the error: the statements before and after
it are still analysed, and the broken one carries PostgreSQL's parser message and position.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

from pglast import ast, parse_sql
from pglast import parser as pg_parser
from pglast.parser import ParseError

_COMMENT_TOKENS = {"SQL_COMMENT", "C_COMMENT"}
_NO_TRANSACTION = re.compile(r"^\s*--\s*no-transaction\b", re.IGNORECASE)


@dataclass
class Chunk:
    """One statement of a file: its text, where it starts, its parse tree or its syntax error."""

    start: int  # character offset of the statement's first token
    end: int  # character offset just past the statement (without the `;`)
    line: int  # 1-based
    column: int  # 1-based
    text: str
    node: object | None = None  # pglast AST node (e.g. AlterTableStmt), None on a syntax error
    error: str | None = None  # PostgreSQL's parser message
    error_line: int = 0
    error_column: int = 0
    comments: list[str] = field(default_factory=list)  # comments between the previous statement and this one


class Positions:
    """Maps character offsets of a text to 1-based (line, column)."""

    def __init__(self, text: str):
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def at(self, offset: int) -> tuple[int, int]:
        index = bisect_right(self._starts, offset) - 1
        return index + 1, offset - self._starts[index] + 1


def is_no_transaction(text: str) -> bool:
    """True when the file's first line is a `-- no-transaction` marker (sqlx, graphile, dbmate style)."""
    first_line = text.lstrip("\ufeff").split("\n", 1)[0]
    return bool(_NO_TRANSACTION.match(first_line))


def _tokens(text: str):
    """Tokens of the text, or of its longest prefix the scanner accepts (an unterminated quote ends it)."""
    for _attempt in range(3):
        try:
            return pg_parser.scan(text)
        except ParseError as error:
            where = error.args[1] if len(error.args) > 1 and isinstance(error.args[1], int) else 0
            if not 0 < where < len(text):
                return None
            text = text[:where]
        except ValueError:
            return None
    return None


def _first_token_start(text: str, start: int, end: int) -> int:
    """Offset of the first token that is not a comment in text[start:end] (skips blanks and comments)."""
    tokens = _tokens(text[start:end])
    if tokens:
        for token in tokens:
            if token.name not in _COMMENT_TOKENS:
                return start + token.start
        return end
    stripped = len(text[start:end]) - len(text[start:end].lstrip())
    return start + stripped


def _comments_in(text: str, start: int, end: int) -> list[str]:
    tokens = _tokens(text[start:end]) or []
    return [text[start + t.start : start + t.end + 1] for t in tokens if t.name in _COMMENT_TOKENS]


_PARSE_LOCK = threading.Lock()


def fast_parse_sql(text: str):
    """pglast's parse_sql without its per-attribute validation: about 10x faster on big files.

    pglast checks and coerces every attribute it sets, which is needed for trees built by hand but
    not for the ones its own C extension builds from PostgreSQL's parser (already of the right
    types). Swapping the check out for the duration of one parse gives identical trees (asserted by
    tests/sql/test_source.py on the whole corpus). Trees built by hand meanwhile in another thread
    would skip coercion, so code building pglast nodes passes exact types (see fixes.py).
    """
    with _PARSE_LOCK:
        validating = ast.Node.__setattr__
        ast.Node.__setattr__ = object.__setattr__
        try:
            return parse_sql(text)
        finally:
            ast.Node.__setattr__ = validating


def _parse(text: str, offset: int) -> list[tuple[int, int, object]]:
    """Parse text (a slice starting at `offset`); (start, end, node) per statement. Raises ParseError."""
    result = []
    for raw in fast_parse_sql(text):
        start = raw.stmt_location
        length = raw.stmt_len or (len(text) - start)
        result.append((offset + start, offset + start + length, raw.stmt))
    return result


def _next_semicolon(text: str, start: int) -> int:
    """Offset just past the next top-level `;` at or after start, or len(text) when there is none."""
    tokens = _tokens(text[start:])
    if tokens is None:
        return len(text)
    for token in tokens:
        if token.name == "ASCII_59":
            return start + token.end + 1
    return len(text)


def _last_semicolon(text: str, start: int, end: int) -> int:
    """Offset just past the last top-level `;` in text[start:end], or start when there is none."""
    tokens = _tokens(text[start:end]) or []
    found = start
    for token in tokens:
        if token.name == "ASCII_59":
            found = start + token.end + 1
    return found


def _raw_statements(text: str) -> list[tuple[int, int, object | None, str | None, int]]:
    """(start, end, node, error message, error offset) for every statement of the text."""
    out: list[tuple[int, int, object | None, str | None, int]] = []
    pos = 0
    while pos < len(text):
        try:
            out.extend((s, e, node, None, 0) for s, e, node in _parse(text[pos:], pos))
            break
        except ParseError as error:
            message = str(error.args[0]) if error.args else "syntax error"
            where = error.args[1] if len(error.args) > 1 and isinstance(error.args[1], int) else None
            if where is None:  # "at end of input": point just past the last character
                where = len(text[pos:].rstrip())
            err_at = min(pos + max(where, 0), len(text))
        boundary = _last_semicolon(text, pos, err_at)
        if boundary > pos:
            try:
                out.extend((s, e, node, None, 0) for s, e, node in _parse(text[pos:boundary], pos))
            except ParseError:
                # The error is reported further on than its real start: treat the lot as broken.
                boundary = pos
        end = max(_next_semicolon(text, err_at), err_at + 1) if err_at < len(text) else len(text)
        end = min(end, len(text))
        out.append((boundary, end, None, message, err_at))
        pos = end
    return out


class _TokenIndex:
    """The file scanned once: first token of a range and the comments in it, without rescanning."""

    def __init__(self, text: str):
        self.text = text
        tokens = _tokens(text) or []
        self.starts = [t.start for t in tokens]
        self.tokens = tokens
        # When a literal is unterminated the scan stops early; ranges past it are scanned on their own.
        if _scans_fully(text, tokens):
            self.covered = len(text)
        else:
            self.covered = tokens[-1].start if tokens else 0

    def first_token_start(self, start: int, end: int) -> int:
        if end > self.covered:
            return _first_token_start(self.text, start, end)
        for index in range(bisect_left(self.starts, start), len(self.tokens)):
            token = self.tokens[index]
            if token.start >= end:
                break
            if token.name not in _COMMENT_TOKENS:
                return token.start
        return end

    def comments_in(self, start: int, end: int) -> list[str]:
        if end > self.covered:
            return _comments_in(self.text, start, end)
        found = []
        for index in range(bisect_left(self.starts, start), len(self.tokens)):
            token = self.tokens[index]
            if token.start >= end:
                break
            if token.name in _COMMENT_TOKENS:
                found.append(self.text[token.start : token.end + 1])
        return found


def _scans_fully(text: str, tokens) -> bool:
    if not tokens:
        return not text.strip()
    return not text[tokens[-1].end + 1 :].strip()


def split(text: str) -> list[Chunk]:
    """Statements of a file in order, each with position, AST or syntax error, and preceding comments."""
    text = text.replace("\x00", " ")  # libpg_query stops at NUL; PostgreSQL rejects it anyway
    positions = Positions(text)
    index = _TokenIndex(text)
    chunks: list[Chunk] = []
    previous_end = 0
    for start, end, node, error, err_at in _raw_statements(text):
        first = index.first_token_start(start, end) if node is not None or error else start
        if node is None and first >= end and error is None:
            continue
        if error is not None:
            first = min(first, err_at)
        body = text[first:end].rstrip().rstrip(";").rstrip()
        line, column = positions.at(first)
        chunk = Chunk(first, end, line, column, body, node=node, comments=index.comments_in(previous_end, first))
        if error is not None:
            chunk.error = error
            chunk.error_line, chunk.error_column = positions.at(err_at)
        chunks.append(chunk)
        previous_end = end
    return chunks


def trailing_comments(text: str, chunks: list[Chunk]) -> list[str]:
    """Comments after the last statement (file-level suppressions may live there)."""
    start = chunks[-1].end if chunks else 0
    return _comments_in(text, start, len(text))
