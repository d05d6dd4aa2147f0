"""The demo: a realistic credit-default classifier whose traffic drifts mid-way."""
