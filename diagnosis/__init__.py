"""Incident diagnosis with Claude (anthropic SDK), constrained to the action registry; implements
engine.ports.Diagnoser.

- `client`: `ClaudeClient`, a thin Messages API wrapper (model, timeout, retries) raising
  `ClaudeUnavailable`.
- `prompt`: pure; incident + observation -> bounded snapshot, system prompt, and the
  `propose_remediation` tool generated from the action registry (`PROMPT_VERSION`).
- `parse`: pure; a Messages API response -> `ParsedReply`, or `ReplyError`.
- `claude`: `ClaudeDiagnoser`: asks, checks every action against the registry and the live
  cluster, records failures, and falls back to the playbooks.
- `eval`: the evaluation set's cases and scoring (`tikvops eval`).
"""

from diagnosis.claude import Assessment, ClaudeAttempt, ClaudeDiagnoser, check_ids
from diagnosis.client import ClaudeClient, ClaudeUnavailable
from diagnosis.parse import ParsedReply, ReplyError, parse_reply
from diagnosis.prompt import PROMPT_VERSION, TOOL_NAME, build_request, build_snapshot

__all__ = [
    "PROMPT_VERSION",
    "TOOL_NAME",
    "Assessment",
    "ClaudeAttempt",
    "ClaudeClient",
    "ClaudeDiagnoser",
    "ClaudeUnavailable",
    "ParsedReply",
    "ReplyError",
    "build_request",
    "build_snapshot",
    "check_ids",
    "parse_reply",
]
