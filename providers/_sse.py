"""Server-sent events, as the WHATWG HTML standard defines them, for OpenAI-style streams.

The decoder is pure: it takes lines and yields events. :func:`split_lines` cuts
a body's pieces, as the network delivers them, into lines (so an event split
across network reads arrives whole), and refuses a line over a size limit rather
than buffering without bound. Per the standard:

- ``data:`` lines of one event are joined with newlines (multi-line data);
- a line starting with ``:`` is a comment (OneRouter's ``: OPENROUTER PROCESSING``
  keep-alives); comments are counted and otherwise ignored;
- a blank line dispatches the event; an event with no data is not dispatched;
- an event still open when the stream ends is discarded (it may be incomplete) and
  counted, so a stream cut mid-event is never mistaken for a finished one.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable

import attrs

__all__ = ["LineSplitter", "LineTooLong", "SSEDecoder", "SSEEvent", "split_lines"]


@attrs.frozen
class SSEEvent:
    """One dispatched event."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Turns lines into :class:`SSEEvent` values; counts comments and discarded events."""

    __slots__ = ("_data", "_event", "_id", "_retry", "comments", "discarded", "events")

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self.comments = 0
        self.events = 0
        self.discarded = 0

    def feed(self, raw: bytes | str) -> SSEEvent | None:
        """Feed one line (with or without its line ending); return an event when one is complete.

        Raises:
            UnicodeDecodeError: on a line that is not UTF-8 (a comment excepted): its
                text cannot be told apart from corrupted text, so it is never patched up.
        """
        if isinstance(raw, bytes):
            if raw[:1] == b":":
                self.comments += 1
                return None
            line = raw.decode("utf-8")
        else:
            line = raw
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments += 1
            return None
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self._id = value
        elif field == "retry" and value.isdigit():
            self._retry = int(value)
        # Other fields are ignored, as the standard says.
        return None

    def collect(self, lines: Iterable[bytes], out: list[str]) -> None:
        """Feed ``lines`` (with or without their line endings); append the data of each event they
        complete to ``out``.

        What :meth:`feed` does, for a reader that only needs the events' data (an
        OpenAI stream's): a ``data`` line and the blank line that dispatches are
        handled here without making a string of the whole line or an
        :class:`SSEEvent`; every other line goes through :meth:`feed`.

        Raises:
            UnicodeDecodeError: as :meth:`feed` does; the events completed before
                that line are in ``out``.
        """
        for raw in lines:
            if raw[:5] == b"data:":
                value = raw[6:] if raw[5:6] == b" " else raw[5:]
                self._data.append(value.decode("utf-8").rstrip("\r\n"))
            elif not raw or raw == b"\r" or raw == b"\n" or raw == b"\r\n":
                data = self._data
                if data:
                    out.append(data[0] if len(data) == 1 else "\n".join(data))
                    self._data = []
                    self.events += 1
                self._event = ""
            else:
                event = self.feed(raw)
                if event is not None:
                    out.append(event.data)

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = SSEEvent(
            data="\n".join(self._data), event=self._event or "message", id=self._id, retry=self._retry
        )
        self._data = []
        self._event = ""
        self.events += 1
        return event

    def close(self) -> None:
        """The stream ended: discard (and count) an event that was never completed."""
        if self._data:
            self.discarded += 1
            self._data = []


class LineTooLong(Exception):
    """A line longer than the limit (internal; the adapter turns it into its own error)."""


class LineSplitter:
    """Cuts a body that arrives in pieces into lines, each with its ``\\n`` (the last may have none).

    Synchronous, so a reader handles every line of a piece in one loop, without an
    async generator step per line.

    Raises:
        LineTooLong: (from :meth:`feed`) at a line longer than ``limit`` bytes, once
            it is known to be.
    """

    __slots__ = ("_limit", "_pending", "_size")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._pending: list[bytes] = []  # the start of a line that has not ended yet
        self._size = 0

    def feed(self, piece: bytes) -> list[bytes]:
        """The lines ``piece`` completes."""
        lines = []
        start = 0
        end = piece.find(b"\n")
        limit = self._limit
        while end >= 0:
            line = piece[start : end + 1]
            if self._pending:
                line = b"".join((*self._pending, line))
                self._pending = []
                self._size = 0
            if len(line) > limit:
                raise LineTooLong(limit)
            lines.append(line)
            start = end + 1
            end = piece.find(b"\n", start)
        if start < len(piece):
            self._pending.append(piece[start:] if start else piece)
            self._size += len(piece) - start
            if self._size > limit:
                raise LineTooLong(limit)
        return lines

    def split(self, piece: bytes) -> list[bytes]:
        """The lines ``piece`` completes, as :meth:`feed` gives them but without their ``\\n``.

        One ``bytes.split`` per piece rather than a search and a slice per line;
        the limit is the same (a line with its ``\\n``).
        """
        lines = piece.split(b"\n")
        rest = lines.pop()  # after the last line ending: the start of a line not ended yet
        limit = self._limit
        if lines:
            if self._pending:
                self._pending.append(lines[0])
                lines[0] = b"".join(self._pending)
                self._pending = []
                self._size = 0
            if len(piece) >= limit or len(lines[0]) >= limit:
                for line in lines:
                    if len(line) >= limit:
                        raise LineTooLong(limit)
        if rest:
            self._pending.append(rest)
            self._size += len(rest)
            if self._size > limit:
                raise LineTooLong(limit)
        return lines

    def close(self) -> bytes | None:
        """The last line, when the body did not end with a line ending."""
        if not self._pending:
            return None
        line = b"".join(self._pending)
        self._pending = []
        return line


async def split_lines(pieces: AsyncIterable[bytes], limit: int) -> AsyncIterator[bytes]:
    """The lines of a body that arrives in ``pieces``, each with its ``\\n`` (the last may have none).

    Raises:
        LineTooLong: at a line longer than ``limit`` bytes, once it is known to be.
    """
    splitter = LineSplitter(limit)
    async for piece in pieces:
        for line in splitter.feed(piece):
            yield line
    last = splitter.close()
    if last is not None:
        yield last
