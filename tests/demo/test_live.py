"""While the demo serves, its models keep logging live traffic through the SDK."""

from __future__ import annotations

import sqlalchemy as sa

from monitor.demo.data import HEALTHY_MODEL, MODEL
from monitor.demo.live import RATES, LiveTraffic


def test_live_traffic_keeps_the_incident_going(clean_db: sa.Engine) -> None:
    traffic = LiveTraffic(clean_db, seed=5)
    try:
        logged = traffic.tick(seconds=1800)  # half an hour of requests at once
        for client in traffic.clients.values():
            assert client.flush(30)
    finally:
        traffic.close()
    # Poisson counts at each model's hourly rate
    for name, n in logged.items():
        assert abs(n - RATES[name] / 2) < 5 * (RATES[name] / 2) ** 0.5
    with clean_db.connect() as conn:
        stored = dict(
            conn.execute(
                sa.text(
                    "SELECT m.name, count(*) FROM predictions p JOIN models m ON m.id = p.model_id "
                    "GROUP BY 1"
                )
            ).all()
        )
        # the model in trouble is still in its incident: a quarter come through partner_api
        share = conn.execute(
            sa.text(
                "SELECT avg((p.cat[f.position + 1] = 'partner_api')::int) FROM predictions p "
                "JOIN models m ON m.id = p.model_id JOIN features f ON f.model_id = m.id "
                "AND f.name = 'channel' WHERE m.name = :n"
            ),
            {"n": MODEL},
        ).scalar()
    assert stored == {MODEL: logged[MODEL], HEALTHY_MODEL: logged[HEALTHY_MODEL]}
    assert 0.12 < float(share) < 0.4
