"""Cluster simulator: a TiKV cluster behind a PD-compatible HTTP API, per-store /metrics, and fault
injection. Imports none of our packages.

    from sim import SimServer
    server = SimServer(stores=3, regions=1000, speed=1.0, seed=0, auto_tick=False)
    await server.start()

See `sim.server` (the server), `sim.cluster` (the model and its virtual clock), `sim.faults`
(fault injection), `sim.scenarios` (named scenarios and what a bot should detect).
"""

from sim.cluster import Cluster
from sim.faults import Faults
from sim.requestlog import RequestRecord
from sim.scenarios import SCENARIOS, ScenarioResult
from sim.server import SimServer

__all__ = ["SCENARIOS", "Cluster", "Faults", "RequestRecord", "ScenarioResult", "SimServer"]
