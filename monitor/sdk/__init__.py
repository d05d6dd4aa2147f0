"""The logging SDK: records, the batching worker, exporters (Postgres, HTTP) and the disk spool.

Imports only the standard library, psycopg and httpx, so serving code stays light.
"""
