"""Read-side queries of the web: stored results, profiles, alerts. Never raw prediction rows.

Every function takes a SQLAlchemy connection and returns plain dicts/dataclasses, so pages and
the JSON API share one query per view and the API shows exactly what the pages show.
"""
