"""The PD members a client may talk to, and which one answered last.

PD runs as 3 or 5 members and any of them answers the HTTP API (a follower forwards to the
leader), so clients are given the whole list, as TiDB's `--path` takes it. `PDMembers` keeps
the list in the order given and remembers the member that answered last: the next request
starts there, and a member that is unreachable is passed over for the next one.

Which failures may move to another member is the PD client's rule (`operator_tikv.pd`): a read
may go anywhere; a write moves on only when no connection was made, so it is never sent twice.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["PDMembers", "split_members"]


def split_members(urls: str | Sequence[str]) -> list[str]:
    """`"http://a:2379, http://b:2379"` (or a list of them) -> the non-empty URLs, in order."""
    items = urls.split(",") if isinstance(urls, str) else list(urls)
    return [u.strip() for u in items if u.strip()]


class PDMembers:
    """PD base URLs in order; `current` is the one that answered last (the first at start)."""

    def __init__(self, urls: Sequence[str]) -> None:
        members: list[str] = []
        for url in urls:
            if url not in members:
                members.append(url)
        if not members:
            raise ValueError("at least one PD URL is needed")
        self.urls: tuple[str, ...] = tuple(members)
        self._current = 0

    @property
    def current(self) -> str:
        return self.urls[self._current]

    def in_order(self) -> list[str]:
        """Every member once, starting with the current one."""
        n = len(self.urls)
        return [self.urls[(self._current + i) % n] for i in range(n)]

    def answered(self, url: str) -> None:
        """`url` answered: start there next time."""
        if url in self.urls:
            self._current = self.urls.index(url)

    def __len__(self) -> int:
        return len(self.urls)

    def __repr__(self) -> str:
        return f"PDMembers({list(self.urls)!r}, current={self.current!r})"
