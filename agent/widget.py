"""Which websites may frame a business's chat page (CSP ``frame-ancestors``).

Owners list their sites in the chat settings. Each entry becomes a source in
a response header, so it is normalised strictly here, once when saved and again
when the header is built: nothing but scheme, host and port ever reaches it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

MAX_FRAME_DOMAINS = 20

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_SOURCE = re.compile(
    rf"^(?:(?P<scheme>https?)://)?(?P<wild>\*\.)?(?P<host>{_LABEL}(?:\.{_LABEL})*)"
    r"(?::(?P<port>\d{1,5}))?$"
)


def frame_source_normalize(raw: str) -> str:
    """``raw`` as a CSP host source ("https://www.example.com", "*.example.org").

    A pasted address loses its path. Raises ValueError saying what is wrong.
    """
    value = str(raw).strip().lower()
    if "://" in value:
        parts = urlsplit(value)
        value = f"{parts.scheme}://{parts.netloc}"
    else:
        value = value.split("/", 1)[0]
    match = _SOURCE.match(value)
    if not match:
        raise ValueError(f"{str(raw)[:100]!r} is not a web address like https://www.example.com")
    if match["wild"] and "." not in match["host"]:
        raise ValueError(f"{str(raw)[:100]!r} would allow a whole top-level domain")
    if match["port"] and not 0 < int(match["port"]) < 65536:
        raise ValueError(f"{str(raw)[:100]!r} has an invalid port")
    return value


def frame_sources_clean(values: Iterable[str]) -> list[str]:
    """Normalised, de-duplicated sources; raises ValueError on the first bad one."""
    cleaned: list[str] = []
    for raw in values:
        if not str(raw).strip():
            continue
        source = frame_source_normalize(raw)
        if source not in cleaned:
            cleaned.append(source)
    if len(cleaned) > MAX_FRAME_DOMAINS:
        raise ValueError(f"List at most {MAX_FRAME_DOMAINS} websites.")
    return cleaned


def frame_ancestor_sources(domains: Iterable[str]) -> list[str]:
    """This site plus every valid listed domain (bad ones dropped), as CSP sources."""
    sources = ["'self'"]
    for raw in domains if isinstance(domains, list | tuple) else []:
        try:
            source = frame_source_normalize(raw)
        except ValueError:
            continue
        if source not in sources:
            sources.append(source)
    return sources[: MAX_FRAME_DOMAINS + 1]


def frame_ancestors(domains: Iterable[str]) -> str:
    """The CSP directive built from ``frame_ancestor_sources``."""
    return "frame-ancestors " + " ".join(frame_ancestor_sources(domains))
