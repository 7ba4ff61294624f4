"""The command grammar: typed commands from words, errors with usage lines, help from the
registry, and a fuzz test that no input makes the parser raise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.attention_commands import AttentionCommand
from engine.commands import (
    CLI_PROG,
    ActionCommand,
    CommandError,
    DecisionCommand,
    HelpCommand,
    KillSwitchCommand,
    ReadCommand,
    command_names,
    example_words,
    help_text,
    parse_command,
    usage,
)
from operator_tikv.actions import (
    REGISTRY,
    DrainParams,
    LimitParams,
    SpaceRatioParams,
    SplitParams,
    TransferLeaderParams,
    TransferPeerParams,
    validate_call,
)


def error(text: str, prog: str = "/tikv") -> CommandError:
    result = parse_command(text, prog=prog)
    assert isinstance(result, CommandError), result
    return result


# ------------------------------------------------------------------ read, decide, safety


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status", ReadCommand(view="status")),
        ("stores", ReadCommand(view="stores")),
        ("incidents", ReadCommand(view="incidents")),
        ("proposals", ReadCommand(view="proposals")),
        ("store 4", ReadCommand(view="store", store_id=4)),
        ("region 2008", ReadCommand(view="region", region_id=2008)),
        ("proposal P-7", ReadCommand(view="proposal", proposal_id="P-7")),
        ("audit", ReadCommand(view="audit", count=20)),
        ("audit 5", ReadCommand(view="audit", count=5)),
        ("approve P-12", DecisionCommand(decision="approve", proposal_id="P-12")),
        ("reject P-3", DecisionCommand(decision="reject", proposal_id="P-3")),
        (
            "reject P-3 not during the sale",
            DecisionCommand(decision="reject", proposal_id="P-3", reason="not during the sale"),
        ),
        ("kill-switch on", KillSwitchCommand(mode="on")),
        ("kill-switch OFF", KillSwitchCommand(mode="off")),
        ("kill-switch status", KillSwitchCommand(mode="status")),
        ("kill-switch on freeze", KillSwitchCommand(mode="on", reason="freeze")),
        ("killswitch status", KillSwitchCommand(mode="status")),
        ("help", HelpCommand()),
        ("", HelpCommand()),
        ("   ", HelpCommand()),
        ("help drain", HelpCommand(topic="drain")),
        ("help Kill_Switch", HelpCommand(topic="kill-switch")),
        ("drain --help", HelpCommand(topic="drain")),
        ("STATUS", ReadCommand(view="status")),
    ],
)
def test_builtin_commands(text: str, expected: object) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize("word", ["P-7", "p-7", "P7", "#7", "7", "P-007"])
def test_proposal_ids_are_normalised(word: str) -> None:
    assert parse_command(f"approve {word}") == DecisionCommand(
        decision="approve", proposal_id="P-7"
    )


def test_slack_smart_quotes_group_a_reason() -> None:
    result = parse_command("reject P-2 “too risky” now")
    assert result == DecisionCommand(decision="reject", proposal_id="P-2", reason="too risky now")


def test_argv_list_is_accepted_and_program_name_dropped() -> None:
    assert parse_command(["drain", "4"], prog=CLI_PROG) == ActionCommand(
        action="drain", params=DrainParams(store_id=4)
    )
    assert parse_command("/tikv stores") == ReadCommand(view="stores")
    assert parse_command("tikvops stores", prog=CLI_PROG) == ReadCommand(view="stores")


# ------------------------------------------------------------------ actions


@pytest.mark.parametrize(
    ("text", "action", "params", "dry_run"),
    [
        ("drain 4", "drain", DrainParams(store_id=4), False),
        ("drain 4 --dry-run", "drain", DrainParams(store_id=4), True),
        ("drain --dry-run 4", "drain", DrainParams(store_id=4), True),
        (
            "transfer-leader 2008 1",
            "transfer-leader",
            TransferLeaderParams(region_id=2008, to_store_id=1),
            False,
        ),
        (
            "transfer_leader 2008 1",
            "transfer-leader",
            TransferLeaderParams(region_id=2008, to_store_id=1),
            False,
        ),
        (
            "transfer-peer 2008 5 6 --dry-run",
            "transfer-peer",
            TransferPeerParams(region_id=2008, from_store_id=5, to_store_id=6),
            True,
        ),
        ("split 2008", "split", SplitParams(region_id=2008, policy="approximate"), False),
        ("split 2008 --policy scan", "split", SplitParams(region_id=2008, policy="scan"), False),
        ("split 2008 --policy=SCAN", "split", SplitParams(region_id=2008, policy="scan"), False),
        ("limit leader 8", "limit", LimitParams(kind="leader", value=8), False),
        ("limit region 0", "limit", LimitParams(kind="region", value=0), False),
        ("limit Replica 64", "limit", LimitParams(kind="replica", value=64), False),
        ("space-ratio low 0.85", "space-ratio", SpaceRatioParams(which="low", ratio=0.85), False),
        ("space-ratio high .6", "space-ratio", SpaceRatioParams(which="high", ratio=0.6), False),
        ("undrain 4", "undrain", None, False),
    ],
)
def test_action_commands(text: str, action: str, params: object, dry_run: bool) -> None:
    result = parse_command(text)
    assert isinstance(result, ActionCommand), result
    assert result.action == action
    assert result.dry_run is dry_run
    if params is not None:
        assert result.params == params
    assert isinstance(result.params, REGISTRY[action].params_model)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_action_usage_example_round_trips(name: str) -> None:
    action = REGISTRY[name]
    for prog in ("/tikv", CLI_PROG):
        words = example_words(action)
        result = parse_command(" ".join(words), prog=prog)
        assert isinstance(result, ActionCommand), result
        assert result.params == action.example
        dry = parse_command([*words, "--dry-run"], prog=prog)
        assert isinstance(dry, ActionCommand) and dry.dry_run and dry.params == action.example
        # the command's call validates against the registry again (what the executor does)
        validated_action, validated = validate_call(result.call)
        assert validated_action is action and validated == action.example


def test_action_names_do_not_shadow_builtin_commands() -> None:
    names = command_names()
    assert len(names) == len(set(names))
    assert set(REGISTRY) <= set(names)


# ------------------------------------------------------------------ errors


def test_non_numeric_store_id_says_what_and_shows_usage() -> None:
    result = error("drain four")
    assert result.text() == (
        "store ID must be a whole number, got 'four'. Usage: /tikv drain <store-id> [--dry-run]"
    )
    assert result.command == "drain"


def test_cli_usage_uses_the_cli_program_name() -> None:
    result = error("drain four", prog=CLI_PROG)
    assert result.usage == "tikvops drain <store-id> [--dry-run]"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("transfer-leader 2008", "missing target store ID"),
        ("transfer-leader", "missing region ID"),
        ("transfer-leader 2008 1 7", "too many arguments: '7'"),
        ("transfer-leader 2008 x1", "target store ID must be a whole number, got 'x1'"),
        ("transfer-leader 0 1", "region ID must be at least 1, got 0"),
        ("transfer-leader 2008 1.5", "target store ID must be a whole number, got '1.5'"),
        ("transfer-peer 2008 5 5", "source and target store are both 5; pick two different stores"),
        ("drain 4 --force", "unknown option '--force' for drain (options: --dry-run)"),
        ("split 2008 --policy", "--policy needs a value"),
        ("split 2008 --policy half", "split policy must be one of approximate, scan, got 'half'"),
        ("limit leader 5000", "leader limit must be between 0 and 1024"),
        ("limit replica -1", "limit value must be at least 0, got -1"),
        ("limit speed 4", "limit must be one of leader, region, replica, got 'speed'"),
        ("limit leader eight", "limit value must be a whole number, got 'eight'"),
        ("space-ratio low 1.2", "space ratio must be less than 1.0, got 1.2"),
        ("space-ratio low 0", "space ratio must be greater than 0.0, got 0.0"),
        ("space-ratio low nan", "space ratio must be a decimal number such as 0.85, got 'nan'"),
        ("space-ratio mid 0.5", "which ratio must be one of low, high, got 'mid'"),
        ("store", "missing store ID"),
        ("store four", "store ID must be a whole number, got 'four'"),
        ("region 1 2", "too many arguments: '2'"),
        ("status now", "too many arguments: 'now'"),
        ("status --dry-run", "--dry-run only applies to actions, not to status"),
        ("audit 0", "the number of records must be at least 1, got 0"),
        ("audit 9999", "the number of records must be at most 500, got 9999"),
        ("approve", "missing proposal ID"),
        ("approve banana", "proposal ID looks like P-7, got 'banana'"),
        ("kill-switch", "missing on, off or status"),
        ("kill-switch maybe", "kill-switch takes on, off or status, got 'maybe'"),
        ("kill-switch off now", "only kill-switch on takes a reason"),
        ("help nothing", "there is no command 'nothing'"),
    ],
)
def test_parser_errors(text: str, message: str) -> None:
    result = error(text)
    assert message in result.message
    assert result.usage is not None and result.usage.startswith("/tikv ")
    assert result.text().endswith(f"Usage: {result.usage}")


def test_unknown_command_suggests_the_closest() -> None:
    result = error("drian 4")
    assert result.suggestion == "drain"
    assert "unknown command 'drian'. Did you mean 'drain'?" in result.message
    assert error("transfer-leeder 1 2").suggestion == "transfer-leader"
    assert error("xyzzy").suggestion is None


def test_non_breaking_spaces_separate_words() -> None:
    assert parse_command("drain\u00a04") == ActionCommand(
        action="drain", params=DrainParams(store_id=4)
    )


def test_dry_run_takes_no_value() -> None:
    assert error("drain 4 --dry-run=yes").message == "--dry-run takes no value"


def test_unbalanced_quotes_are_an_error_not_a_crash() -> None:
    result = error('reject P-1 "never closed')
    assert "check the quotes" in result.message


# ------------------------------------------------------------------ usage and help


def test_usage_lines_come_from_the_params_models() -> None:
    assert usage("drain") == "/tikv drain <store-id> [--dry-run]"
    assert usage("transfer-peer", CLI_PROG) == (
        "tikvops transfer-peer <region-id> <from-store-id> <to-store-id> [--dry-run]"
    )
    assert usage("limit") == "/tikv limit <leader|region|replica> <n> [--dry-run]"
    assert usage("split") == "/tikv split <region-id> [--policy approximate|scan] [--dry-run]"
    assert usage("reject") == "/tikv reject <proposal-id> [reason...]"


def test_help_overview_lists_every_command_and_action() -> None:
    text = help_text()
    for name in command_names():
        assert usage(name) in text
    for action in REGISTRY.values():
        assert action.summary in text
        assert f"risk {action.risk.value}" in text


@pytest.mark.parametrize("name", list(REGISTRY))
def test_action_help_has_risk_undo_params_and_a_parsable_example(name: str) -> None:
    action = REGISTRY[name]
    text = help_text(name, CLI_PROG)
    assert text.startswith(f"Usage: {usage(name, CLI_PROG)}")
    assert f"Risk: {action.risk.value}." in text
    assert action.undo_sentence(action.example) in text
    for info in action.params_model.model_fields.values():
        assert info.title is not None and info.title in text
    example_line = next(line for line in text.splitlines() if line.startswith("Example: "))
    parsed = parse_command(example_line.removeprefix("Example: "), prog=CLI_PROG)
    assert isinstance(parsed, ActionCommand) and parsed.params == action.example
    assert action.requests(action.example)[0].describe() in text


def test_builtin_help_shows_its_usage() -> None:
    assert help_text("store").startswith("Usage: /tikv store <store-id>\n")


# ------------------------------------------------------------------ fuzz

_RESULT_TYPES = (
    HelpCommand,
    ReadCommand,
    ActionCommand,
    DecisionCommand,
    KillSwitchCommand,
    AttentionCommand,
    CommandError,
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_no_text_makes_the_parser_raise(text: str) -> None:
    assert isinstance(parse_command(text), _RESULT_TYPES)


_WORDS = st.one_of(
    st.sampled_from(
        [*command_names(), "--dry-run", "--policy", "--policy=scan", "-h", "on", "P-1", "low"]
    ),
    st.integers(min_value=-5, max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.text(max_size=6),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_WORDS, max_size=6))
def test_no_word_list_makes_the_parser_raise(words: list[str]) -> None:
    result = parse_command(words)
    assert isinstance(result, _RESULT_TYPES)
    if isinstance(result, ActionCommand):
        # whatever parsed is valid for its action
        assert REGISTRY[result.action].validate(result.params.model_dump()) == result.params
    if isinstance(result, CommandError):
        assert result.message
