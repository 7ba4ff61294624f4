"""PD failure bodies become our error types, for every case and version in pd-errors.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from operator_tikv import errors as e
from operator_tikv.errors import classify, parse_error_body, truncate

FIXTURES = Path(__file__).parent.parent / "fixtures" / "pd"
CASES: list[dict[str, Any]] = json.loads((FIXTURES / "errors.json").read_text())["cases"]

#: The error type each failure case must become (for the request's method and path).
EXPECTED: dict[str, type[e.PDError]] = {
    "body_empty": e.PDBadRequestError,
    "body_not_json": e.PDBadRequestError,
    "not_bootstrapped": e.PDNotBootstrappedError,
    "route_unknown": e.PDNotFoundError,
    "op_missing_name": e.PDBadRequestError,
    "op_unknown_name": e.PDBadRequestError,
    "op_transfer_leader_missing_region": e.PDBadRequestError,
    "op_transfer_leader_store_id_field": e.PDBadRequestError,
    "op_region_not_found": e.RegionNotFoundError,
    "op_transfer_leader_no_voter": e.PeerNotFoundError,
    "op_transfer_leader_already_leader": e.NoOperatorStepError,
    "op_transfer_leader_unhealthy_peer": e.StoreNotAllowedError,
    "op_transfer_leader_not_allowed": e.StoreNotAllowedError,
    "op_already_exists": e.OperatorConflictError,
    "op_transfer_peer_missing_from": e.PDBadRequestError,
    "op_transfer_peer_missing_to": e.PDBadRequestError,
    "op_transfer_peer_from_no_peer": e.PeerNotFoundError,
    "op_target_store_not_found": e.StoreNotFoundError,
    "op_target_store_removed": e.StoreNotAllowedError,
    "op_target_store_unhealthy": e.StoreNotAllowedError,
    "op_add_peer_exists": e.PeerExistsError,
    "op_remove_peer_missing_store": e.PDBadRequestError,
    "op_merge_not_adjacent": e.PDRejectedError,
    "op_merge_abnormal": e.PDRejectedError,
    "op_split_missing_policy": e.PDBadRequestError,
    "op_split_bad_policy": e.PDBadRequestError,
    "op_split_bad_key": e.PDBadRequestError,
    "op_scatter_hot": e.PDRejectedError,
    "op_transfer_region_no_roles": e.PDBadRequestError,
    "op_status_not_found": e.OperatorNotFoundError,
    "op_status_bad_id": e.PDBadRequestError,
    "op_delete_not_found": e.OperatorNotFoundError,
    "op_records_empty": e.OperatorNotFoundError,
    "sched_missing_name": e.PDBadRequestError,
    "sched_unknown": e.PDBadRequestError,
    "sched_evict_missing_store": e.PDBadRequestError,
    "sched_evict_store_id_not_number": e.PDBadRequestError,
    "sched_evict_store_not_found_create": e.StoreNotFoundError,
    "sched_evict_store_not_found_update": e.StoreNotFoundError,
    "sched_evict_store_paused": e.StoreNotAllowedError,
    "sched_exists": e.SchedulerExistsError,
    "sched_delete_not_found": e.SchedulerNotFoundError,
    "sched_delete_store_not_in_config": e.SchedulerNotFoundError,
    "sched_delete_store_no_scheduler": e.SchedulerNotFoundError,
    "schedcfg_delete_not_in_config": e.SchedulerNotFoundError,
    "schedcfg_list_no_scheduler": e.PDNotFoundError,
    "store_not_found": e.StoreNotFoundError,
    "store_bad_id": e.PDBadRequestError,
    "store_delete_not_found": e.StoreNotFoundError,
    "store_delete_tombstone": e.StoreNotAllowedError,
    "store_delete_not_enough": e.PDRejectedError,
    "store_delete_no_leader_store": e.PDRejectedError,
    "store_delete_destroyed": e.StoreNotAllowedError,
    "store_state_invalid": e.PDBadRequestError,
    "store_state_up_tombstone": e.StoreNotAllowedError,
    "store_weight_leader_unset": e.PDBadRequestError,
    "store_weight_region_unset": e.PDBadRequestError,
    "store_weight_bad": e.PDBadRequestError,
    "store_weight_not_found": e.StoreNotFoundError,
    "stores_bad_state": e.PDUnavailableError,  # an unrecognised 5xx to a GET
    "stores_check_bad_state": e.PDBadRequestError,
    "region_not_found": e.RegionNotFoundError,
    "region_bad_id": e.PDBadRequestError,
    "hot_bad_store": e.PDBadRequestError,
    "hot_unknown_store": e.StoreNotFoundError,
    "cfg_schedule_bad_json": e.PDBadRequestError,
    "cfg_schedule_wrong_type": e.PDBadRequestError,
    "cfg_schedule_invalid": e.PDBadRequestError,
    "cfg_schedule_ttl": e.PDBadRequestError,
    "cfg_generic_unknown_key": e.PDBadRequestError,
}


def failure_answers() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(label, case, answer) for every non-2xx answer: the main one and each version variant."""
    out = []
    for case in CASES:
        answers = [("main", case)] + [
            (f"variant{i}", v) for i, v in enumerate(case.get("variants", []))
        ]
        for label, answer in answers:
            if answer["status"] >= 400:
                out.append((f"{case['id']}-{label}", case, answer))
    return out


ANSWERS = failure_answers()


def expected_message(answer: dict[str, Any]) -> str:
    """PD's message, derived from the case's decoded body (independently of the parser)."""
    body, raw = answer["body"], answer["raw_body"]
    if isinstance(body, dict):
        return str(body["msg"])
    if isinstance(body, str):
        inner = body.strip()
        return json.loads(inner) if inner.startswith('"') else body
    if raw.strip() == "null":
        return ""
    if raw.startswith('"'):  # two concatenated JSON strings: the first is the error
        return str(json.loads(raw.splitlines()[0]))
    return str(raw.strip())


def not_found_for(path: str) -> type[e.PDNotFoundError]:
    # the client uses this for writes under /schedulers/ (the per-store delete answers null)
    return (
        e.SchedulerNotFoundError
        if path.startswith("/pd/api/v1/schedulers/")
        else (e.PDNotFoundError)
    )


def test_every_failure_case_has_an_expectation() -> None:
    failing_ids = {case["id"] for _label, case, _answer in ANSWERS}
    assert failing_ids == set(EXPECTED)
    assert len(ANSWERS) > len(EXPECTED)  # the version variants are exercised as well


@pytest.mark.parametrize(("label", "case", "answer"), ANSWERS, ids=[a[0] for a in ANSWERS])
def test_classify_every_documented_failure(
    label: str, case: dict[str, Any], answer: dict[str, Any]
) -> None:
    request = case["request"]
    path = request["path"].split("?")[0]
    error = classify(
        answer["status"],
        answer["raw_body"].encode(),
        method=request["method"],
        path=path,
        not_found=not_found_for(path),
    )
    assert type(error) is EXPECTED[case["id"]], label
    assert error.status == answer["status"]
    assert error.message == expected_message(answer)
    assert error.path == path and error.method == request["method"]
    if "[PD:" in error.message:
        assert error.code is not None and error.message.startswith(f"[{error.code}]")
    rendered = str(error)
    assert error.summary in rendered and error.advice in rendered
    assert error.from_pd
    if error.message:
        assert f"PD said {error.message[:40]!r}"[:-1] in rendered


def test_pd_code_is_preferred_to_the_message() -> None:
    # a future rewording of the message still maps by code
    error = classify(500, '"[PD:region:ErrRegionNotFound]no such region anymore"\n', method="POST")
    assert isinstance(error, e.RegionNotFoundError)
    assert error.code == "PD:region:ErrRegionNotFound"
    assert error.code_name == "ErrRegionNotFound"


def test_unprefixed_old_messages_match_by_text() -> None:
    error = classify(500, '"region 999999 not found"\n', method="POST")
    assert isinstance(error, e.RegionNotFoundError)
    assert error.code is None


def test_unknown_500_to_a_write_is_a_refusal_and_to_a_read_unavailability() -> None:
    body = '"something PD has never said before"\n'
    assert type(classify(500, body, method="POST")) is e.PDRejectedError
    assert type(classify(500, body, method="GET")) is e.PDUnavailableError
    assert type(classify(502, "<html>bad gateway</html>", method="POST")) is e.PDUnavailableError
    assert type(classify(500, "", method="DELETE")) is e.PDUnavailableError


def test_other_4xx_is_a_refusal() -> None:
    assert type(classify(403, "forbidden", method="GET")) is e.PDRejectedError


class TestParseErrorBody:
    def test_json_string(self) -> None:
        parsed = parse_error_body(b'"missing region id"\n')
        assert parsed.message == "missing region id" and parsed.is_json and parsed.code is None

    def test_errcode_object(self) -> None:
        parsed = parse_error_body(
            b'{\n  "code": "input",\n  "msg": "unexpected end of JSON input",\n'
            b'  "data": {\n    "Offset": 0\n  }\n}\n'
        )
        assert parsed.message == "unexpected end of JSON input"
        assert parsed.code == "input"

    def test_null(self) -> None:
        parsed = parse_error_body(b"null\n")
        assert parsed.message == "" and parsed.is_json and parsed.value is None

    def test_plain_text(self) -> None:
        parsed = parse_error_body(b"404 page not found\n")
        assert parsed.message == "404 page not found" and not parsed.is_json

    def test_concatenated_strings_keep_the_first(self) -> None:
        parsed = parse_error_body(b'"missing store id"\n"The scheduler is created."\n')
        assert parsed.message == "missing store id"

    def test_string_wrapping_a_string(self) -> None:
        parsed = parse_error_body(b'"\\"[PD:core:ErrStoreNotFound]store 99 not found\\"\\n"\n')
        assert parsed.message == "[PD:core:ErrStoreNotFound]store 99 not found"
        assert parsed.code == "PD:core:ErrStoreNotFound"

    def test_invalid_utf8_does_not_raise(self) -> None:
        assert parse_error_body(b"\xff\xfe oops").message.endswith("oops")

    def test_other_json_values_are_rendered(self) -> None:
        assert parse_error_body(b"[1, 2]").message == "[1, 2]"
        assert parse_error_body(b'{"data": 1}').message == '{"data": 1}'


def test_long_bodies_are_truncated() -> None:
    long = "x" * 5000
    error = classify(500, json.dumps(long), method="POST")
    assert len(error.message) <= e.MAX_MESSAGE_CHARS
    assert error.body is not None and len(error.body) <= e.MAX_BODY_CHARS
    assert "chars)" in error.message
    assert truncate("short") == "short"


def test_hierarchy() -> None:
    for kind in EXPECTED.values():
        assert issubclass(kind, e.PDError)
    assert issubclass(e.RegionNotFoundError, e.PDNotFoundError)
    assert issubclass(e.OperatorConflictError, e.PDConflictError)
    assert issubclass(e.StoreNotAllowedError, e.PDRejectedError)
    assert e.PDUnavailableError("x", outcome_unknown=True).outcome_unknown


def test_the_failure_sentence_is_composed_once_with_a_lead() -> None:
    generic = e.PDRejectedError("scheduler existed", status=500, method="POST", path="/x")
    plain = str(generic)
    assert plain == (
        "PD refused the request: PD said 'scheduler existed' (HTTP 500, POST /x). Read PD's "
        "reason, fix the cause, then retry."
    )
    # a lead that says the same as the summary replaces it: never "refused: PD refused"
    assert generic.describe(lead="PD refused the request") == plain
    # a different summary follows as its own sentence after PD's words
    specific = e.StoreNotAllowedError("store 2 is disconnected", status=500)
    text = specific.describe(lead="PD refused the request")
    assert text.startswith("PD refused the request: PD said 'store 2 is disconnected' (HTTP 500).")
    assert " The store cannot take part in this change. The store is Down," in text
    assert text.count("..") == 0
    ours = e.PDUnavailableError("connection refused", from_pd=False)
    assert ours.describe(lead="PD did not take the request") == (
        "PD did not take the request: connection refused. PD is unavailable. Check that PD is "
        "running and reachable from the bot, then retry."
    )
