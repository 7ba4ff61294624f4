"""TiKV knowledge: PD and Prometheus clients, typed models, invariants, the action registry and
playbooks. Knows nothing of Slack or SQLite.
"""
