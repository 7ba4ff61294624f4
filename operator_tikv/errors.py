"""Our own error types for everything that can go wrong when talking to PD.

PD answers failures in several shapes (pd-api.md §0.3): a JSON string (usually
``"[PD:<class>:<Name>]<message>"``, without the prefix in 6.5/7.1), an errcode object
``{"code","msg","data"}``, JSON ``null``, plain text (``404 page not found``), a JSON string
that wraps another JSON string, or two concatenated JSON strings (old evict-leader bug).
:func:`parse_error_body` reduces all of them to PD's message and code, and
:func:`classify` turns a status plus that message into one of the types below. Matching is on
the stable ``[PD:...]`` code when present, else on the stable message text the reference
gives, so every PD version listed in ``pd-errors.json`` maps the same way.

Hierarchy::

    PDError                          base; carries PD's message, code, HTTP status, method, path
    ├── PDUnavailableError           PD unreachable, timed out, or 5xx without a recognised refusal
    │                                (GETs are retried first). ``outcome_unknown`` for writes.
    ├── PDProtocolError              a response that does not parse or validate (cause chained)
    │   ├── PDResponseTooLargeError  the body passed the endpoint's size limit (not read further)
    │   └── PDUntrustworthyError     it parses, but cannot be true of a running cluster
    │                                (``{"count": 1, "stores": []}``, stores vanishing...)
    ├── PDNotBootstrappedError       no TiKV has joined the cluster yet
    ├── PDBadRequestError            PD says our request is malformed or a value is invalid
    ├── PDNotFoundError              a named object does not exist
    │   ├── RegionNotFoundError
    │   ├── StoreNotFoundError
    │   ├── OperatorNotFoundError
    │   ├── SchedulerNotFoundError   (also: store not in the evict-leader config)
    │   └── PeerNotFoundError        the region has no (voter) peer on the given store
    ├── PDConflictError              something already exists or is already running
    │   ├── OperatorConflictError    ErrAddOperator: "maybe already have one"
    │   ├── SchedulerExistsError
    │   └── PeerExistsError
    └── PDRejectedError              PD understood the request and refused it
        ├── StoreNotAllowedError     target store Down/Disconnected/Tombstone/unhealthy/evicted...
        └── NoOperatorStepError      nothing to do: the region is already in the requested state
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from operator_tikv.sentences import join_sentences

__all__ = [
    "UNTRUSTWORTHY",
    "NoOperatorStepError",
    "OperatorConflictError",
    "OperatorNotFoundError",
    "PDBadRequestError",
    "PDConflictError",
    "PDError",
    "PDNotBootstrappedError",
    "PDNotFoundError",
    "PDProtocolError",
    "PDRejectedError",
    "PDResponseTooLargeError",
    "PDUnavailableError",
    "PDUntrustworthyError",
    "ParsedBody",
    "PeerExistsError",
    "PeerNotFoundError",
    "RegionNotFoundError",
    "SchedulerExistsError",
    "SchedulerNotFoundError",
    "StoreNotAllowedError",
    "StoreNotFoundError",
    "classify",
    "match_rule",
    "parse_error_body",
    "truncate",
]

MAX_MESSAGE_CHARS = 500
MAX_BODY_CHARS = 300

_CODE_RE = re.compile(r"^\[(PD:[A-Za-z0-9_]+:[A-Za-z0-9_]+)\]")


def _same_words(a: str, b: str) -> bool:
    return a.strip().rstrip(".:").casefold() == b.strip().rstrip(".:").casefold()


def truncate(text: str, limit: int = MAX_BODY_CHARS) -> str:
    """Shorten ``text`` to at most ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 15, 0)] + f"… (+{len(text) - limit + 15} chars)"


class PDError(Exception):
    """Base of every PD failure. ``message`` is PD's own text (truncated), when PD said one."""

    summary: ClassVar[str] = "The PD request failed"
    advice: ClassVar[str] = "Check PD's health and logs, then try again."

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        code: str | None = None,
        method: str | None = None,
        path: str | None = None,
        body: str | None = None,
        from_pd: bool = True,
    ) -> None:
        #: PD's own text (truncated); our own explanation when ``from_pd`` is False.
        self.message = truncate(message, MAX_MESSAGE_CHARS)
        self.from_pd = from_pd
        self.status = status
        self.code = code
        self.method = method
        self.path = path
        self.body = truncate(body) if body is not None else None
        super().__init__(self._render())

    @property
    def code_name(self) -> str | None:
        """The last part of PD's code, e.g. ``ErrRegionNotFound``."""
        return self.code.rsplit(":", 1)[-1] if self.code else None

    def describe(self, lead: str | None = None) -> str:
        """The failure as sentences for people: what happened, PD's own words, where, and
        what to do next. This is the one place they are composed (`str(error)` is
        `describe()`); callers that know more give it as `lead` instead of prefixing the text:

            "PD refused the request: PD said 'x' (HTTP 500, POST /pd/api/v1/operators). Read
            PD's reason, fix the cause, then retry."
            describe(lead="PD did not take the request") ->
            "PD did not take the request: connection refused (POST /…). PD is unavailable.
            Check that PD is running and reachable from the bot, then retry."

        The class's summary is kept as its own sentence after `lead`, unless it says the same
        thing, so no phrase is ever repeated."""
        head = lead.strip().rstrip(".:") if lead else self.summary
        if self.message:
            head += f": PD said {self.message!r}" if self.from_pd else f": {self.message}"
        where = []
        if self.status is not None:
            where.append(f"HTTP {self.status}")
        if self.method and self.path:
            where.append(f"{self.method} {self.path}")
        if where:
            head += f" ({', '.join(where)})"
        same = lead is None or _same_words(lead, self.summary)
        return join_sentences(head, None if same else self.summary, self.advice)

    def _render(self) -> str:
        return self.describe()


class PDUnavailableError(PDError):
    """PD could not be reached, timed out, or answered 5xx without a recognised refusal."""

    summary = "PD is unavailable"
    advice = "Check that PD is running and reachable from the bot, then retry."

    def __init__(self, message: str = "", *, outcome_unknown: bool = False, **kw: Any) -> None:
        #: True when a write may have reached PD before the failure (e.g. a read timeout after
        #: the body was sent): re-read the cluster state before retrying it.
        self.outcome_unknown = outcome_unknown
        super().__init__(message, **kw)


class PDProtocolError(PDError):
    """PD's answer did not parse or did not match the expected shape."""

    summary = "PD answered something the bot cannot read"
    advice = "This PD version may differ from the supported ones (v6.5 to v8.5); report it."


class PDResponseTooLargeError(PDProtocolError):
    """PD's answer was larger than the bot accepts for that endpoint; the rest was not read."""

    summary = "PD's answer was larger than the bot accepts"
    advice = (
        "Something other than PD may be answering (a proxy or a load balancer): check that "
        "TIKVOPS_PD_URL points at a PD member. If the cluster really is that large, report it."
    )


UNTRUSTWORTHY = "PD answer not trustworthy"
"""The summary of `PDUntrustworthyError`: the monitor recognises an observation that failed
for this reason by it (see `operator_tikv.trust`)."""


class PDUntrustworthyError(PDProtocolError):
    """PD answered with something that cannot be true of a bootstrapped cluster: no stores,
    a `count` that does not match the list, stores that vanished without becoming Tombstone.
    Treated like PD unreachable: nothing is concluded from it."""

    summary = UNTRUSTWORTHY
    advice = (
        "Incidents stay as they were until PD answers consistently again. Check PD's leader "
        "(pd-ctl member) and anything between the bot and PD (a proxy or a cache)."
    )


class PDNotBootstrappedError(PDError):
    summary = "The TiKV cluster is not bootstrapped"
    advice = "Start at least one TiKV store so it joins PD, then retry."


class PDBadRequestError(PDError):
    summary = "PD rejected the request as malformed or invalid"
    advice = "Fix the parameters (ids are numbers, values in range) and retry."


class PDNotFoundError(PDError):
    summary = "PD does not know the requested object"
    advice = "Re-read the cluster state and use a current id."


class RegionNotFoundError(PDNotFoundError):
    summary = "PD does not know this region"
    advice = "It may have been merged or split: look the region up again by key and retry."


class StoreNotFoundError(PDNotFoundError):
    summary = "PD does not know this store"
    advice = "List the stores and use a current store id."


class OperatorNotFoundError(PDNotFoundError):
    summary = "No operator runs on this region (or its record is older than 10 minutes)"
    advice = "Re-read the region to see whether the change happened."


class SchedulerNotFoundError(PDNotFoundError):
    summary = "The scheduler (or this store in its config) does not exist"
    advice = "List the schedulers and their config to see what is running."


class PeerNotFoundError(PDNotFoundError):
    summary = "The region has no suitable peer on that store"
    advice = "Re-read the region's peers and pick a store that holds a voter of it."


class PDConflictError(PDError):
    summary = "The change conflicts with something that already exists"
    advice = "Wait for the running work to finish or cancel it, then retry."


class OperatorConflictError(PDConflictError):
    summary = "PD already runs an operator on this region"
    advice = "Wait for the running operator to finish (or cancel it), then retry."


class SchedulerExistsError(PDConflictError):
    summary = "The scheduler already exists"
    advice = "Nothing to add; list the schedulers to confirm."


class PeerExistsError(PDConflictError):
    summary = "The region already has a peer on that store"
    advice = "Pick another target store."


class PDRejectedError(PDError):
    summary = "PD refused the request"
    advice = "Read PD's reason, fix the cause, then retry."


class StoreNotAllowedError(PDRejectedError):
    summary = "The store cannot take part in this change"
    advice = (
        "The store is Down, Disconnected, Tombstone, unhealthy or under evict-leader; "
        "pick a healthy Up store or fix this one first."
    )


class NoOperatorStepError(PDRejectedError):
    summary = "There is nothing to do: the region is already in the requested state"
    advice = "Re-read the region to confirm; no change is needed."


@dataclass(frozen=True)
class ParsedBody:
    """PD's error body reduced to its message. ``code`` is the ``[PD:...]`` code or errcode."""

    message: str
    code: str | None
    is_json: bool
    value: Any
    raw: str


def _unwrap_string(text: str) -> str:
    """Unwrap a JSON string nested in a JSON string (PD's forwarded inner body)."""
    for _ in range(3):
        stripped = text.strip()
        if not (stripped.startswith('"') and stripped.endswith('"')):
            break
        try:
            inner = json.loads(stripped)
        except ValueError:
            break
        if not isinstance(inner, str):
            break
        text = inner
    return text.strip()


def parse_error_body(raw: bytes | str) -> ParsedBody:
    """Reduce any PD error body to its message and code.

    Handles a JSON string, an errcode object, ``null``, plain text, a string wrapping a string,
    and two concatenated JSON values (only the first, the error, is kept).
    """
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    stripped = text.strip()
    try:
        value, end = json.JSONDecoder().raw_decode(stripped)
        rest = stripped[end:].strip()
        if rest:
            # Only two concatenated JSON values count as JSON (old evict-leader bug);
            # "404 page not found" must not be read as the number 404.
            json.JSONDecoder().raw_decode(rest)
    except ValueError:
        return ParsedBody(message=stripped, code=None, is_json=False, value=None, raw=text)
    code: str | None = None
    if isinstance(value, str):
        message = _unwrap_string(value)
    elif value is None:
        message = ""
    elif isinstance(value, dict):
        message = str(value.get("msg") or value.get("message") or value.get("error") or "")
        if not message:
            message = json.dumps(value)
        errcode = value.get("code")
        if isinstance(errcode, str) and errcode:
            code = errcode
    else:
        message = json.dumps(value)
    match = _CODE_RE.match(message)
    if match:
        code = match.group(1)
    return ParsedBody(message=message, code=code, is_json=True, value=value, raw=text)


# (PD code name, pattern on the message without its [PD:...] prefix, error type).
# Either part may be None; a rule matches when its code matches or its pattern is found.
_RULES: tuple[tuple[str | None, str | None, type[PDError]], ...] = (
    ("ErrNotBootstrapped", r"cluster not bootstrapped", PDNotBootstrappedError),
    ("ErrRegionNotFound", r"^region \d+ not found", RegionNotFoundError),
    ("ErrStoreNotFound", r"^store \d+ not found", StoreNotFoundError),
    ("ErrOperatorNotFound", r"^operator not found", OperatorNotFoundError),
    ("ErrSchedulerNotFound", r"^scheduler not found", SchedulerNotFoundError),
    ("ErrScheduleConfigNotExist", r"^the config does not exist", SchedulerNotFoundError),
    ("ErrAddOperator", r"failed to add operator, maybe already have one", OperatorConflictError),
    ("ErrSchedulerExisted", r"^scheduler existed", SchedulerExistsError),
    ("ErrStoreRemoved", r"^store \d+ has been removed", StoreNotAllowedError),
    ("ErrStoreUnhealthy", r"^store \d+ is unhealthy", StoreNotAllowedError),
    ("ErrStoreDestroyed", r"has been physically destroyed", StoreNotAllowedError),
    ("ErrPauseLeaderTransfer", r"is paused for leader transfer", StoreNotAllowedError),
    (None, r"target leader is not allowed", StoreNotAllowedError),
    (None, r"^cannot transfer leader to \d+: unhealthy", StoreNotAllowedError),
    (None, r"^region has no (voter|peer) in store \d+", PeerNotFoundError),
    (None, r"^region already has peer in store \d+", PeerExistsError),
    (None, r"^no operator step is built", NoOperatorStepError),
    ("ErrStoresNotEnough", r"since the number of up stores would be", PDRejectedError),
    ("ErrNoStoreForRegionLeader", r"no extra up store to store the leader", PDRejectedError),
    ("ErrRegionAbnormalPeer", r"^region \d+ has abnormal peer", PDRejectedError),
    ("ErrRegionNotAdjacent", r"^two regions are not adjacent", PDRejectedError),
    (None, r"^region \d+ is a hot region", PDRejectedError),
    (None, r"^check policy \S* is not supported", PDBadRequestError),
    (None, r"^split key \S* is not in hex format", PDBadRequestError),
    (None, r"^transfer region without peer role is not supported", PDBadRequestError),
    (None, r"should (be )?between|should be larger than|should be non-negative", PDBadRequestError),
    (None, r"^leader-schedule-policy \S+ is invalid", PDBadRequestError),
    (None, r"^batch (is invalid|must be)", PDBadRequestError),
)
_COMPILED = tuple(
    (code, re.compile(pattern) if pattern else None, kind) for code, pattern, kind in _RULES
)


def match_rule(parsed: ParsedBody) -> type[PDError] | None:
    """The specific error type for PD's message, or None when no stable code/text matches."""
    name = parsed.code.rsplit(":", 1)[-1] if parsed.code and parsed.code.startswith("PD:") else None
    detail = _CODE_RE.sub("", parsed.message, count=1).strip()
    for code, _pattern, kind in _COMPILED:
        if name is not None and code == name:
            return kind
    for _code, pattern, kind in _COMPILED:
        if pattern is not None and pattern.search(detail):
            return kind
    return None


def classify(
    status: int,
    raw: bytes | str,
    *,
    method: str | None = None,
    path: str | None = None,
    not_found: type[PDNotFoundError] = PDNotFoundError,
) -> PDError:
    """Turn a non-2xx PD answer into the most specific error type.

    ``not_found`` is the type for a 404 that carries no recognised message (for example the
    ``null`` body of the per-store evict-leader delete). An unrecognised 5xx becomes
    :class:`PDUnavailableError`, except a 500 whose body is PD's JSON message string to a
    write, which becomes :class:`PDRejectedError` (PD's handler answered and refused).
    """
    parsed = parse_error_body(raw)
    kw: dict[str, Any] = {
        "status": status,
        "code": parsed.code,
        "method": method,
        "path": path,
        "body": parsed.raw,
    }
    kind = match_rule(parsed)
    if kind is not None:
        return kind(parsed.message, **kw)
    if status == 404:
        return not_found(parsed.message, **kw)
    if status == 400:
        return PDBadRequestError(parsed.message, **kw)
    if 400 <= status < 500:
        return PDRejectedError(parsed.message, **kw)
    if status == 500 and method not in (None, "GET") and isinstance(parsed.value, str):
        return PDRejectedError(parsed.message, **kw)
    return PDUnavailableError(parsed.message, **kw)
