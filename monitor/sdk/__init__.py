"""The logging SDK. Imports only the standard library, psycopg and httpx: serving code stays light.

The path of a record, one module each:

- ``client``: ``Monitor`` (``log``, ``log_actual``, ``flush``, ``shutdown``, ``stats``), fork,
  exit and signal hooks; ``batch``: ``log_batch``, the bulk path, with ``rowblock``.
- ``records``: the record types and the rules that read ids, times and values (shared with the
  HTTP collector); ``validate``: strict mode's checks.
- ``worker``: the queue, its thread, flush and shutdown; ``delivery``: export, split on
  refusal, spool on outage, replay; ``spool``: the disk spool; ``wire``: records as JSON.
- ``exporters``: the sinks (Postgres, the HTTP collector); ``watchdog``: a deadline for
  database I/O.
- ``postgres``: the writer, with its two paths: ``fast`` (column-wise COPY; C twin in
  ``_speedups.c``) and ``careful`` (clean, count, isolate, dead-letter); ``schema`` (feature
  slots and the feature cap), ``encode`` (binary fields), ``copyio``, ``lanes``.
"""
