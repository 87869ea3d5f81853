"""A job's server-sent events: :class:`Event`, and the ``text/event-stream`` parser."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Event:
    """One server-sent event of a job: ``type`` is ``status`` (``data`` is the job) or
    ``epoch`` (``data`` is the epoch's metrics row); ``id`` resumes the stream after it."""

    type: str
    data: dict[str, Any]
    id: str | None = None


@dataclass
class SSEParser:
    """The ``text/event-stream`` format: fields per line, a blank line ends an event."""

    event: str = "message"
    data: list[str] = field(default_factory=list)
    id: str | None = None

    def feed(self, line: str) -> Event | None:
        """Take one line (without its line break); the event it completes, if any."""
        if not line:
            if not self.data:
                self.event = "message"
                return None
            payload = json.loads("\n".join(self.data))
            done = Event(self.event, payload, self.id)
            self.event, self.data = "message", []
            return done
        if line.startswith(":"):
            return None  # a comment: keeps the connection alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        elif name == "id":
            self.id = value
        return None
