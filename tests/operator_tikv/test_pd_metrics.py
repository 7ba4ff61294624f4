"""parse_pd_metrics: PD's region counts and leadership read from its /metrics text."""

from __future__ import annotations

import pytest

from operator_tikv.pd_metrics import parse_pd_metrics
from sim.cluster import Cluster
from sim.pd_metrics import render_pd_metrics

PAGE = b"""# HELP pd_regions_status Status of the regions.
# TYPE pd_regions_status gauge
pd_regions_status{type="down-peer-region-count"} 1.2e+06
pd_regions_status{type="pending-peer-region-count"} 3
pd_regions_status{instance="pd-1",type="miss-peer-region-count"} 2
pd_regions_status{type="miss-peer-region-count",instance="pd-2"} 1
pd_regions_status_other{type="down-peer-region-count"} 99
# pd_regions_status{type="extra-peer-region-count"} 5
etcd_server_is_leader 0
"""


def test_counts_are_read_by_type_and_summed_over_other_labels() -> None:
    page = parse_pd_metrics(PAGE)
    assert page.region_counts == {
        "down-peer-region-count": 1_200_000,
        "pending-peer-region-count": 3,
        "miss-peer-region-count": 3,
    }
    assert page.is_leader is False


def test_first_and_last_lines_without_a_final_newline_are_read() -> None:
    page = parse_pd_metrics(
        b'pd_regions_status{type="miss-peer-region-count"} 4\n'
        b"etcd_server_is_leader_changes_seen_total 3\n"
        b"etcd_server_is_leader 1"
    )
    assert page.region_counts == {"miss-peer-region-count": 4}
    assert page.is_leader is True


def test_a_page_without_the_series_has_no_counts_and_unknown_leadership() -> None:
    page = parse_pd_metrics(b"go_goroutines 12\n")
    assert page.region_counts == {} and page.is_leader is None


@pytest.mark.parametrize("value", [b"abc", b"-1", b"NaN", b"+Inf"])
def test_a_broken_count_is_an_error_not_zero(value: bytes) -> None:
    with pytest.raises(ValueError):
        parse_pd_metrics(b'pd_regions_status{type="down-peer-region-count"} ' + value + b"\n")


def test_the_simulator_page_is_read_like_pd() -> None:
    cluster = Cluster(stores=3, regions=300, seed=3)
    cluster.stop_store(3)
    cluster.advance(700)
    page = parse_pd_metrics(render_pd_metrics(cluster).encode())
    assert page.is_leader is True
    assert page.region_counts["down-peer-region-count"] == cluster.check_count("down-peer")
    assert page.region_counts["down-peer-region-count"] > 0
    assert page.region_counts["empty-region-count"] == cluster.check_count("empty-region")
