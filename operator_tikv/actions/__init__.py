"""The action registry: every cluster-changing action, declared once.

Each action (`base.Action[P]`) declares its name, summary, typed params, risk, reversibility
and undo, the exact PD writes, and the async steps preflight → execute → verify (plus
snapshot, dry_run and reconcile). `REGISTRY` feeds the command grammar
(`engine.commands`), the Claude tool schema (`tool_input_schema`), rendering (`present`) and
the executor. `follow()` is the verification loop with an injected clock; `ReadOnce` lets one
execution's preflight and snapshot share each PD read.
"""

from operator_tikv.actions.base import (
    Action,
    ActionCall,
    ActionParams,
    ActionText,
    Check,
    DryRun,
    Outcome,
    PreflightContext,
    PreflightReport,
    RegionState,
    Risk,
    Snapshot,
    Verification,
)
from operator_tikv.actions.cache import ReadOnce
from operator_tikv.actions.config import LimitParams, SpaceRatioParams
from operator_tikv.actions.drain import DrainParams, UndrainParams
from operator_tikv.actions.errors import (
    ActionError,
    InvalidParams,
    PreflightRefused,
    UnknownAction,
)
from operator_tikv.actions.follow import follow
from operator_tikv.actions.leader import TransferLeaderParams
from operator_tikv.actions.peer import TransferPeerParams
from operator_tikv.actions.ports import PDApi
from operator_tikv.actions.registry import (
    REGISTRY,
    action_names,
    get_action,
    validate_call,
    validate_params,
)
from operator_tikv.actions.schema import (
    action_call_schema,
    action_schema,
    parse_action_call,
    parse_tool_input,
    tool_input_schema,
)
from operator_tikv.actions.split import SplitParams

__all__ = [
    "REGISTRY",
    "Action",
    "ActionCall",
    "ActionError",
    "ActionParams",
    "ActionText",
    "Check",
    "DrainParams",
    "DryRun",
    "InvalidParams",
    "LimitParams",
    "Outcome",
    "PDApi",
    "PreflightContext",
    "PreflightRefused",
    "PreflightReport",
    "ReadOnce",
    "RegionState",
    "Risk",
    "Snapshot",
    "SpaceRatioParams",
    "SplitParams",
    "TransferLeaderParams",
    "TransferPeerParams",
    "UndrainParams",
    "UnknownAction",
    "Verification",
    "action_call_schema",
    "action_names",
    "action_schema",
    "follow",
    "get_action",
    "parse_action_call",
    "parse_tool_input",
    "tool_input_schema",
    "validate_call",
    "validate_params",
]
