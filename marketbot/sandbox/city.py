"""The demo city the sandbox page's map shows and `marketbot demo-data` fills: central Singapore."""

from __future__ import annotations

from typing import Any

NAME = "Singapore"
TIMEZONE = "Asia/Singapore"
CURRENCY = "SGD"
CENTER = (1.2834, 103.8607)  # Marina Bay
# The map's extent: about 6.6 km each way, where the demo venues are.
SOUTH, NORTH = 1.255, 1.315
WEST, EAST = 103.815, 103.885
LANDMARKS: tuple[tuple[str, float, float], ...] = (
    ("Marina Bay", 1.2834, 103.8607),
    ("Raffles Place", 1.2840, 103.8514),
    ("Chinatown", 1.2838, 103.8443),
    ("Tanjong Pagar", 1.2764, 103.8458),
    ("Clarke Quay", 1.2906, 103.8465),
    ("Bugis", 1.3009, 103.8559),
    ("Orchard", 1.3040, 103.8318),
    ("Kampong Glam", 1.3030, 103.8590),
)


def as_json() -> dict[str, Any]:
    return {
        "name": NAME,
        "center": list(CENTER),
        "bounds": {"south": SOUTH, "north": NORTH, "west": WEST, "east": EAST},
        "landmarks": [{"name": n, "lat": lat, "lon": lon} for n, lat, lon in LANDMARKS],
    }
