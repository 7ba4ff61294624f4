"""Peer URLs as the bot prints them: credentials (`user:password@`) never appear.

PD's HTTP API has no password authentication (it secures its API with TLS client
certificates), so a PD URL with credentials is refused at start (`tikvops.settings`); these
helpers are what that refusal, and any message that has to name a URL, use to show it without
the secret.
"""

from __future__ import annotations

import re

# scheme://authority/rest, or (no scheme) authority/rest; the authority ends at / ? or #.
_AUTHORITY = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://)?(?P<authority>[^/?#]*)")


def _split(url: str) -> tuple[str, str, str]:
    text = url.strip()
    found = _AUTHORITY.match(text)
    assert found is not None  # the pattern matches any string
    return found["head"] or "", found["authority"], text[found.end() :]


def has_credentials(url: str) -> bool:
    """Whether the URL carries a user name or a password before its host."""
    return "@" in _split(url)[1]


def redact_url(url: str) -> str:
    """The URL with its user information replaced by `***` (`http://***@pd:2379`); other
    URLs unchanged (an `@` in the path or query is not user information)."""
    head, authority, rest = _split(url)
    if "@" not in authority:
        return url.strip()
    return f"{head}***@{authority.rpartition('@')[2]}{rest}"


__all__ = ["has_credentials", "redact_url"]
