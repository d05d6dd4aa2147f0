"""Alerts: rules over results, an Alertmanager-style lifecycle, and delivery from an outbox.

``rules`` defines and stores rules (YAML, API, defaults); ``evaluate`` turns the latest results
into alert state and outbox rows in one transaction per model; ``delivery`` claims due rows and
sends them through a channel from the ``channels`` registry (webhook, Slack).
"""
