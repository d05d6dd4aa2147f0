"""The JSON API under ``/api/v1``: everything the pages show, plus rules, silences, tokens."""
