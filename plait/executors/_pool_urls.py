"""The server list of an :class:`~plait.executors.EndpointPool`, checked before anything is contacted."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from plait.errors import ConfigError

__all__ = ["check_urls"]


def check_urls(urls: Sequence[str] | str) -> list[str]:
    """The pool's server URLs, each checked; ConfigError naming every malformed, empty or duplicated entry."""
    given = urls.split(",") if isinstance(urls, str) else list(urls)
    shown = ",".join(map(str, given)) if len(given) < 20 else f"{len(given)} URLs"
    if not given or given == [""]:
        raise ConfigError("EndpointPool needs at least one server URL, e.g. 'http://host1:8000,http://host2:8000'")
    problems: list[str] = []
    seen: dict[tuple[str, str, int, str], str] = {}  # (scheme, host, port, path) -> the URL as given
    for i, url in enumerate(given, 1):
        where = f"entry {i} of {shown!r}"
        if not isinstance(url, str) or not url.strip():
            problems.append(f"{where} is empty; separate URLs by single commas")
            continue
        url = url.strip()
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            problems.append(f"{where} ({url!r}) is not a URL: {exc}")
            continue
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            problems.append(f"{where} ({url!r}) is not an http(s):// server URL such as http://host:8000")
            continue
        path = parts.path.rstrip("/").removesuffix("/v1")
        server = (parts.scheme, parts.hostname.lower(), port, path)
        if server in seen:
            problems.append(f"{where} ({url!r}) names the same server as {seen[server]!r}; list each server once")
            continue
        seen[server] = url
    if problems:
        raise ConfigError("EndpointPool: " + "; ".join(problems))
    return list(seen.values())
