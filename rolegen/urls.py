"""Credentials out of URLs: what rolegen writes to disk or prints names a server by
its scheme, host, port and path only (`http://user:secret@host/v1` -> `http://host/v1`)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from rolegen.errors import RolegenError

# scheme://userinfo@ at the start of a value: the only URLs that carry a credential
_WITH_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@")


def check_url(url: str, flag: str) -> None:
    """Refuse a server address that no request could reach, before anything runs: it needs
    http or https, a host, and a port in range where one is given. The message names the
    flag and the address without its credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port  # a port out of range or not a number raises here
    except ValueError as e:
        raise RolegenError(f"{flag} {public_url(url)}: not a valid URL ({e})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RolegenError(
            f"{flag} {public_url(url)}: not an http(s) URL with a host "
            f"(e.g. http://127.0.0.1:8000/v1)"
        )
    if port == 0:
        raise RolegenError(f"{flag} {public_url(url)}: port 0 is not a server's port")


def public_url(url: str) -> str:
    """`url` without credentials (user:password@), query or fragment (an API key may ride in
    either), fit for a manifest or an error."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:  # an IPv6 literal keeps its brackets
            host = f"[{host}]"
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:  # a malformed port or bracket: keep only what cannot hold a secret
        return _WITH_USERINFO.sub(lambda m: m.group(0).split("//")[0] + "//", url)
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def redact(value):
    """`value` (settings as plain data: dicts, lists, strings) with the credentials taken out
    of every URL that carries one; everything else as it was."""
    if isinstance(value, str):
        return public_url(value) if _WITH_USERINFO.match(value) else value
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value
