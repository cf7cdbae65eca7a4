"""An incremental server-sent events decoder (the WHATWG ``text/event-stream`` rules).

Bytes arrive in arbitrary chunks from the network; :meth:`SseDecoder.feed`
returns every event completed so far. Lines end with LF, CRLF or CR (a CR
at the end of a chunk may be the first half of a CRLF); ``data:`` lines of
one event are joined with ``\\n``; lines starting with ``:`` are comments
(keep-alives); ``event:`` names the event; a blank line dispatches it. At
the end of the stream, :meth:`SseDecoder.close` returns an event whose
blank line never came (the standard drops it; a server that closes without
the last blank line still meant it). Unlike the standard, an event without
``data:`` lines is dispatched too (with empty data): a Responses stream may
name an event with ``event:`` alone.
"""

from __future__ import annotations

import codecs

import attrs

__all__ = ["SseDecoder", "SseEvent", "SseLineTooLong"]

# One line may not grow beyond this (a server that never sends a newline).
MAX_LINE_BYTES = 16 * 1024 * 1024


@attrs.frozen
class SseEvent:
    """One dispatched event: its ``event:`` name ("message" by default) and data."""

    event: str
    data: str
    id: str | None = None


class SseLineTooLong(ValueError):
    """A line exceeded :data:`MAX_LINE_BYTES`."""


class SseDecoder:
    """Feed bytes, get :class:`SseEvent` objects; one decoder per response."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._first = True
        self._skip_lf = False
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._has_fields = False

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Decode ``chunk``; return the events it completed."""
        text = self._text.decode(chunk)
        if self._first and text:
            self._first = False
            text = text.removeprefix("\ufeff")
        return self._lines(text)

    def close(self) -> list[SseEvent]:
        """End of stream: the last line and an event left without its blank line."""
        events = self._lines(self._text.decode(b"", final=True))
        if self._buffer:
            line, self._buffer = self._buffer, ""
            self._line(line, events)
        if self._has_fields:
            events.append(self._dispatch())
        return events

    def _lines(self, text: str) -> list[SseEvent]:
        events: list[SseEvent] = []
        if self._skip_lf and text.startswith("\n"):
            text = text[1:]
        self._skip_lf = False
        buffer = self._buffer + text
        start = 0
        length = len(buffer)
        # The next CR is searched again only once we pass it: searching from every
        # line start would rescan the rest of the chunk per line (quadratic).
        cr = buffer.find("\r")
        while start < length:
            if 0 <= cr < start:
                cr = buffer.find("\r", start)
            lf = buffer.find("\n", start)
            if cr < 0 and lf < 0:
                break
            if cr < 0 or (0 <= lf < cr):
                end, next_start = lf, lf + 1
            elif cr + 1 < length:
                end, next_start = cr, cr + (2 if buffer[cr + 1] == "\n" else 1)
            else:  # a CR at the end: its LF may come with the next chunk
                end, next_start = cr, cr + 1
                self._skip_lf = True
            self._line(buffer[start:end], events)
            start = next_start
        self._buffer = buffer[start:]
        if len(self._buffer) > MAX_LINE_BYTES:
            raise SseLineTooLong(f"an event-stream line is longer than {MAX_LINE_BYTES} bytes")
        return events

    def _line(self, line: str, events: list[SseEvent]) -> None:
        if not line:
            if self._has_fields:
                events.append(self._dispatch())
            return
        if line.startswith(":"):
            return  # a comment (keep-alive)
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        else:
            return  # "retry" and unknown fields do not start an event
        self._has_fields = True

    def _dispatch(self) -> SseEvent:
        event = SseEvent(event=self._event or "message", data="\n".join(self._data), id=self._id)
        self._event = ""
        self._data = []
        self._has_fields = False
        return event
