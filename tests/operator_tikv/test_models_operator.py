"""Operator strings (PD answers strings, not objects) and the v8.1+ object form."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from operator_tikv.models import OperatorInfo, OperatorStatus, parse_operator_string

FIXTURES = Path(__file__).parent.parent / "fixtures" / "pd"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_running_operator_status() -> None:
    op = OperatorInfo.model_validate(load("operator_status.json"))
    assert op.status is OperatorStatus.RUNNING
    assert op.desc == "admin-transfer-leader"
    assert op.brief == "transfer leader: store 4 to 1"
    assert op.kinds == ["admin", "leader"]
    assert op.region_id == 3325
    assert (op.region_version, op.region_conf_ver) == (88, 5)
    assert op.current_step == 0
    assert op.size_mib == 93
    assert op.steps == ["transfer leader from store 4 to store 1"]
    assert op.timeout == timedelta(minutes=1)
    assert op.is_admin and op.is_running
    assert not op.finished and not op.timed_out


def test_finished_operator() -> None:
    op = OperatorInfo.model_validate(load("operator_status_success.json"))
    assert op.status is OperatorStatus.SUCCESS
    assert op.status.is_terminal and not op.is_running
    assert op.finished and op.current_step == 1


def test_timed_out_operator_with_joint_consensus_steps() -> None:
    op = OperatorInfo.model_validate(load("operator_status_timeout.json"))
    assert op.status is OperatorStatus.TIMEOUT
    assert op.timed_out and not op.finished
    assert op.kinds == ["admin", "region"]
    assert op.brief == "mv peer: store [5] to [6]"
    assert len(op.steps) == 4
    assert op.steps[1].startswith("use joint consensus, promote learner peer 2012")
    assert op.steps[3] == "remove peer on store 5"
    assert op.timeout == timedelta(minutes=10)


def test_v650_format_unnumbered_steps_and_full_width_comma() -> None:
    op = OperatorInfo.model_validate(load("operator_status_v650.json"))
    assert op.status is OperatorStatus.CANCEL
    assert op.steps == ["transfer leader from store 4 to store 1"]
    assert op.timeout == timedelta(minutes=1)
    assert op.region_id == 3325


def test_operator_list_has_no_status() -> None:
    ops = TypeAdapter(list[OperatorInfo]).validate_python(load("operators_list.json"))
    assert [op.region_id for op in ops] == [3325, 2716, 2008]
    assert all(op.status is None and op.is_running for op in ops)
    assert [op.is_admin for op in ops] == [True, False, True]
    assert ops[1].desc == "balance-leader-scheduler" and ops[1].kinds == ["leader"]


def test_object_form_maps_internal_status_numbers() -> None:
    ops = TypeAdapter(list[OperatorInfo]).validate_python(load("operators_list_object.json"))
    assert ops[0].status is OperatorStatus.RUNNING  # internal STARTED = 1
    assert ops[0].region_id == 3325
    assert ops[0].region_version == 88
    assert ops[0].timeout == timedelta(minutes=1)
    assert ops[0].is_admin


@pytest.mark.parametrize("printed", ["5", "CREATED"])
def test_created_status_prints_as_5(printed: str) -> None:
    text = load("operator_status.json").replace("status: RUNNING", f"status: {printed}")
    assert OperatorInfo.model_validate(text).status is OperatorStatus.CREATED


def test_kinds_are_split_before_region_not_at_the_first_comma() -> None:
    fields = parse_operator_string(
        "hot-region-scheduler {transfer leader: store 1 to 4} "
        "(kind:hot-region,leader, region:2008(61, 5), createAt:x, startAt:x, currentStep:0, "
        "size:94, steps:[0:{transfer leader from store 1 to store 4}], timeout:[1m0s])"
    )
    assert fields["kinds"] == ["hot-region", "leader"]
    assert fields["region_id"] == 2008


def test_unparseable_tail_is_tolerated() -> None:
    op = OperatorInfo.model_validate(
        "status: REPLACE, operator: balance-leader-scheduler {transfer leader: store 4 to 1} "
        "(kind:leader, region:2716(73, 5), something new in v27)"
    )
    assert op.status is OperatorStatus.REPLACE
    assert op.steps == [] and op.timeout is None and op.current_step is None


@pytest.mark.parametrize("bad", ["", "operator not found", "status: RUNNING, operator: x"])
def test_not_an_operator_string(bad: str) -> None:
    with pytest.raises(ValidationError):
        OperatorInfo.model_validate(bad)


def test_unknown_status_word_does_not_validate() -> None:
    text = load("operator_status.json").replace("status: RUNNING", "status: EXPLODED")
    with pytest.raises(ValidationError):
        OperatorInfo.model_validate(text)
