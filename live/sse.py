"""Server-sent events on the wire (the text/event-stream format browsers' EventSource reads)."""

from __future__ import annotations

from live.hub import LiveEvent

HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # proxies that buffer responses would hold events back
}
# sent first: the browser retries after 2 s if the stream breaks
OPENING = b"retry: 2000\n: watching\n\n"
HEARTBEAT = b": ping\n\n"


def frame(event: LiveEvent) -> bytes:
    """One event: its name, its id (for repeats) and its JSON body on one data line."""
    data = event.data.replace(b"\r", b"").replace(b"\n", b"\ndata: ")
    return b"event: %s\nid: %s\ndata: %s\n\n" % (
        event.kind.encode(), event.event_id.encode(), data)
