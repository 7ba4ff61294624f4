"""`operator_tikv.trust.TrustCheck`: stores vanishing from PD's list must have become
Tombstone; an empty list after a full one is not believed; a rejected answer is not remembered.
PD's single-store lookups are answered by a small fake (the check's only PD read)."""

from __future__ import annotations

from operator_tikv.errors import PDUnavailableError, StoreNotFoundError
from operator_tikv.models.store import StoreInfo
from operator_tikv.observation import Observation
from operator_tikv.trust import TrustCheck, is_untrustworthy

URL = "http://pd.test:2379"


def store(store_id: int, state: str = "Up") -> StoreInfo:
    return StoreInfo.model_validate(
        {
            "store": {"id": store_id, "address": f"tikv{store_id}:20160", "state_name": state},
            "status": {},
        }
    )


def seen(*stores: StoreInfo) -> Observation:
    return Observation(at=1.0, pd_url=URL, stores=stores)


class Lookup:
    def __init__(self, answers: dict[int, StoreInfo | Exception]) -> None:
        self.answers = answers
        self.asked: list[int] = []

    async def get_store(self, store_id: int) -> StoreInfo:
        self.asked.append(store_id)
        answer = self.answers[store_id]
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_a_store_that_became_tombstone_may_leave_the_list() -> None:
    lookup = Lookup({3: store(3, "Tombstone")})
    check = TrustCheck(lookup)
    await check.vet(seen(store(1), store(2), store(3, "Offline")))
    vetted = await check.vet(seen(store(1), store(2)))
    assert vetted.pd_reachable and lookup.asked == [3]
    assert set(check.known_stores) == {1, 2}


async def test_an_offline_store_whose_record_is_gone_may_leave_the_list() -> None:
    check = TrustCheck(Lookup({3: StoreNotFoundError("store 3 not found", status=404)}))
    await check.vet(seen(store(1), store(3, "Offline")))
    assert (await check.vet(seen(store(1)))).pd_reachable


async def test_an_up_store_that_vanishes_is_not_believed_and_not_remembered() -> None:
    lookup = Lookup({3: store(3, "Up")})
    check = TrustCheck(lookup)
    await check.vet(seen(store(1), store(2), store(3)))
    vetted = await check.vet(seen(store(1), store(2)))
    assert not vetted.pd_reachable and is_untrustworthy(vetted)
    assert vetted.stores == ()
    assert vetted.pd_error is not None
    assert vetted.pd_error.startswith(
        "PD answer not trustworthy: store 3 (Up in its last believable answer) is missing from "
        "its store list, yet PD says it is Up"
    )
    assert set(check.known_stores) == {1, 2, 3}  # compared with the last believable answer
    assert (await check.vet(seen(store(1), store(2), store(3)))).pd_reachable


async def test_a_failed_lookup_or_no_lookup_is_not_believed() -> None:
    failing = TrustCheck(Lookup({2: PDUnavailableError("connection refused", from_pd=False)}))
    await failing.vet(seen(store(1), store(2)))
    vetted = await failing.vet(seen(store(1)))
    assert is_untrustworthy(vetted)
    assert "looking it up failed: PD is unavailable: connection refused" in (vetted.pd_error or "")

    blind = TrustCheck(None)
    await blind.vet(seen(store(1), store(2, "Down")))
    vetted = await blind.vet(seen(store(1)))
    assert "store 2 vanished from its store list without becoming Tombstone (last seen 2 Down)" in (
        vetted.pd_error or ""
    )


async def test_an_empty_list_after_a_full_one_is_not_believed() -> None:
    check = TrustCheck(Lookup({}))
    await check.vet(seen(store(1), store(2)))
    vetted = await check.vet(seen())
    assert is_untrustworthy(vetted)
    assert "it lists no stores, where its last believable answer listed 2" in (
        vetted.pd_error or ""
    )


async def test_an_unreachable_pd_is_passed_through_unchanged() -> None:
    check = TrustCheck(Lookup({}))
    await check.vet(seen(store(1)))
    down = Observation(at=2.0, pd_url=URL, pd_error="PD is unavailable: refused")
    assert await check.vet(down) is down
    assert not is_untrustworthy(down)
    assert set(check.known_stores) == {1}
