"""SIEM delivery of the sealed audit trail, privileged access grants marked.

Two ways out, the same event documents (:func:`idgov.siem.service.event_document`):

- **Pull**: ``GET /siem/events?cursor=&limit=`` answers JSON Lines, one sealed event per
  line in ``seq`` order, the next cursor in the ``X-Next-Cursor`` header (``endpoints``).
- **Push**: syslog sinks (``/siem/sinks``) fed by the periodic job ``siem.syslog``
  (``tasks``) as RFC 5424 messages over TCP or TLS with octet-counting framing
  (``syslog``), each sink with its cursor persisted after every batch.

Which events are marked ``privileged`` is decided in ``privileged`` (pure).
"""
