"""The workflow: monitor, incidents, proposals, approval policy, executor. No Slack, no SQL, no
LLM, no scheduler: it reaches the world through the protocols in engine.ports.
"""
