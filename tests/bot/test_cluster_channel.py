"""`/tikv` in a cluster's incident channel targets that cluster; elsewhere the command names
it; records that know their cluster (decisions, attention) keep finding it themselves."""

from __future__ import annotations

from pathlib import Path

from bot.handlers.commands import in_cluster_of_channel
from engine.commands import parse_command
from tests.engine.test_clusters import two_clusters
from tests.plugins.sim import SimFactory


async def test_the_channel_names_the_cluster(sim_factory: SimFactory, db_path: Path) -> None:
    async with two_clusters(sim_factory, db_path) as two:
        engine = two.prod

        def read(text: str, channel: str | None, name: str | None = None) -> object:
            parsed = parse_command(text, clusters=engine.clusters)
            return in_cluster_of_channel(engine, parsed, channel, name)

        assert read("drain 4", "tikv-staging").cluster == "staging"  # type: ignore[attr-defined]
        assert read("drain 4", "C123", "tikv-prod").cluster == "prod"  # type: ignore[attr-defined]
        assert read("drain 4", "C999", "general").cluster is None  # type: ignore[attr-defined]
        # a cluster named in the words wins over the channel's
        assert read("prod drain 4", "tikv-staging").cluster == "prod"  # type: ignore[attr-defined]
        # the overview of every cluster stays an overview in any channel
        assert read("clusters", "tikv-staging").cluster is None  # type: ignore[attr-defined]
        # decisions are routed by their proposal's cluster, not the channel
        assert read("approve P-1", "tikv-staging").cluster is None  # type: ignore[attr-defined]
