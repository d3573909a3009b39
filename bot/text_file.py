"""An uploaded file's bytes as lines of text, read lazily: binary formats refused with what they are, UTF-8,
cp1252 (Excel's "CSV (Comma delimited)") and UTF-16 decoded, and the lines handed out one at a time with the
look-ahead a header search needs, so a long file's text and lines are never held whole (bot/worker_files.py
reads worker files through it). Pure: no Slack, no network, no database.
"""

from __future__ import annotations

import codecs
import itertools
import re
import unicodedata
from collections.abc import Iterator


class UnreadableFile(Exception):
    """The file is not text this app reads; the message says what it is, in the uploader's terms."""


# Physical lines: only CR, LF and CRLF end a line, as in the csv module and in editors; str.splitlines would
# also split on form feeds and U+2028, and then the line numbers in errors would not match what people see.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
# In these, a line feed byte is never part of another character, so a file can be decoded a block at a time, each
# block ending at a line feed, and the text of the whole file is never held beside its bytes.
_BLOCK_ENCODINGS = ("utf-8", "cp1252")
_DECODE_BLOCK = 1 << 16  # bytes

_NOT_TEXT = "this is not a CSV or text file (save it as CSV UTF-8)"
_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "this is an Excel workbook or other zip file, not a CSV; in Excel use Save As › CSV UTF-8"),
    (b"PK\x05\x06", "this is an Excel workbook or other zip file, not a CSV; in Excel use Save As › CSV UTF-8"),
    (b"\xd0\xcf\x11\xe0", "this is an old Excel (.xls) workbook, not a CSV; in Excel use Save As › CSV UTF-8"),
    (b"%PDF", "this is a PDF, not a CSV or text file"),
    (b"\x1f\x8b", "this is a compressed (gzip) file; upload the CSV inside it"),
)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"
# Text never has more than the odd stray control character; a file that does is some binary format.
_CONTROL_SAMPLE = 65536
_MAX_CONTROL_FRACTION = 0.01
_ALLOWED_CONTROLS = frozenset("\t\n\r\f\v")


def decoded_lines(content: bytes, filename: str) -> Iterator[str]:
    """The file's physical lines as text, one at a time, once it is known to be text; endings are kept (the csv
    module needs them to join quoted fields that span lines)."""
    if not content:
        raise UnreadableFile("the file is empty")
    for signature, message in _BINARY_SIGNATURES:
        if content.startswith(signature):
            raise UnreadableFile(message)
    if content.startswith(_UTF16_BOMS):
        return _utf16_lines(content, filename)
    if b"\x00" in content:
        raise UnreadableFile(_not_text(filename))
    start = len(_UTF8_BOM) if content.startswith(_UTF8_BOM) else 0
    # Excel on Windows saves "CSV (Comma delimited)" in the ANSI code page, which is cp1252 in the places our
    # users are; the bytes it leaves undefined mean the file is not that either.
    for encoding in _BLOCK_ENCODINGS:
        if (sample := _sample_if_decodes(content, start, encoding)) is not None:
            _refuse_control_characters(sample, filename)
            return _lines_by_block(content, start, encoding)
    raise UnreadableFile(_not_text(filename))


def _utf16_lines(content: bytes, filename: str) -> Iterator[str]:
    # Excel's "Unicode Text" is UTF-16 with a BOM: text, though full of NUL bytes. Such files are rare, so they
    # are decoded whole (the text takes half the bytes' size for the ASCII of worker IDs).
    try:
        text = content.decode("utf-16")
    except UnicodeDecodeError:
        raise UnreadableFile(_not_text(filename)) from None
    if "\x00" in text:
        raise UnreadableFile(_not_text(filename))
    _refuse_control_characters(text[:_CONTROL_SAMPLE], filename)
    return map(re.Match.group, _LINE.finditer(text))


def _sample_if_decodes(content: bytes, start: int, encoding: str) -> str | None:
    """The text's first _CONTROL_SAMPLE characters, if the bytes from `start` on are text in this encoding."""
    decoder = codecs.getincrementaldecoder(encoding)()
    view = memoryview(content)
    sample = ""
    try:
        for offset in range(start, len(content), _DECODE_BLOCK):
            text = decoder.decode(view[offset : offset + _DECODE_BLOCK])
            if len(sample) < _CONTROL_SAMPLE:
                sample += text[: _CONTROL_SAMPLE - len(sample)]
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    return sample


def _lines_by_block(content: bytes, start: int, encoding: str) -> Iterator[str]:
    """The lines of the bytes from `start` on, decoded a block at a time; the lines are those of the whole text,
    since each block ends just after a line feed, which always ends a line (a CR before it goes with it)."""
    view = memoryview(content)
    while start < len(content):
        end = content.find(b"\n", start + _DECODE_BLOCK) + 1 or len(content)
        yield from _LINE.findall(str(view[start:end], encoding))
        start = end


def _refuse_control_characters(sample: str, filename: str) -> None:
    controls = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROLS)
    if controls > max(1, len(sample) * _MAX_CONTROL_FRACTION):
        raise UnreadableFile(_not_text(filename))


def _not_text(filename: str) -> str:
    if filename.lower().endswith((".xlsx", ".xls", ".xlsm", ".numbers", ".ods")):
        return "this is a spreadsheet, not a CSV; save it as CSV UTF-8 and upload that"
    return _NOT_TEXT


class LineReader:
    """A file's physical lines, read in order as the parser needs them, never all held at once.

    The parser stands on one line at a time. The header search reads the record that starts there, which may
    span lines, once for each delimiter it tries: `ahead()` keeps the lines it reads until the parser moves past
    them, so only that record's lines are ever held. Starting to read ahead costs the same on any line, so
    looking for a header on each of a million comment lines stays linear.
    """

    def __init__(self, source: Iterator[str]) -> None:
        self._source = source
        self.line = next(source, None)  # the one stood on; None past the end
        self.number = 1  # of the line stood on, counting from 1 as the errors do
        self._after: list[str] = []  # lines after it that ahead() has read (those from _next on)
        self._next = 0

    def each(self) -> Iterator[str]:
        """Each line in turn, standing on it until the next is asked for; stop early and `rest()` starts there."""
        while (line := self.line) is not None:
            yield line
            self.number += 1
            if self._next < len(self._after):
                self.line = self._after[self._next]
                self._next += 1
                if self._next == len(self._after):
                    self._after.clear()
                    self._next = 0
            else:
                self.line = next(self._source, None)

    def ahead(self) -> Iterator[str]:
        """The lines from the one stood on, without moving past them."""
        if self.line is None:
            return
        yield self.line
        index = self._next
        while True:
            if index == len(self._after):
                line = next(self._source, None)
                if line is None:
                    return
                self._after.append(line)
            yield self._after[index]
            index += 1

    def rest(self) -> Iterator[str]:
        """The lines from the one stood on to the end of the file, each read once (this uses the lines up)."""
        held = ([] if self.line is None else [self.line]) + self._after[self._next :]
        self.line, self._after = None, []
        return itertools.chain(held, self._source)
