"""`/healthz` while PD's answers are not believable: not ready at once (however recently PD
answered), with the reason, until PD answers believably again."""

from __future__ import annotations

from tikvops.observability import Health


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_untrusted_answers_fail_readiness_at_once_and_recover_on_the_next_good_one() -> None:
    clock = Clock()
    health = Health(poll_interval=15.0, slack_required=False, now=clock)
    health.scheduler(True)
    health.pd_ok()
    assert health.report().ok

    reason = "PD answer not trustworthy: its store list says count 1 but lists 0 stores"
    clock.now += 1  # PD answered a second ago: still not ready
    health.pd_untrusted(reason)
    report = health.report()
    assert not report.ok
    assert report.failing == {"pd": reason}

    clock.now += 1
    health.pd_ok()
    assert health.report().ok


def test_an_ordinary_failure_still_waits_for_staleness() -> None:
    clock = Clock()
    health = Health(poll_interval=15.0, slack_required=False, now=clock)
    health.scheduler(True)
    health.pd_ok()
    health.pd_failed("connection refused")
    assert health.report().ok  # one failed cycle is not yet a stale PD
    clock.now += 46
    assert "connection refused" in health.report().failing["pd"]
