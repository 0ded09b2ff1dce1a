"""Per-card fraud features: a small JSON-serialisable state per card and a pure `update(state, txn, amount)`.

Features describe a transaction against the card's history BEFORE it (the transaction is added to the state
afterwards), so training, evaluation and the live agent compute exactly the same numbers. The state is the value of
the card stage's Faust table (keyed by card token): `state.to_dict()` / `CardState.from_dict()`.

Amounts are in the reference currency (the caller converts them: `amount`), so a card paying in several currencies
is compared with itself in one unit. A confirmed fraud on the card (`mark_fraud`) counts from the first full hour
after it was reported, never before.

Memory is bounded per card: at most `MAX_WINDOW` (timestamp, amount) pairs from the last 24 h (counts and sums
saturate there), per-day counts and sums of the last 30 days, and the most recent `MAX_MERCHANTS` merchants,
`MAX_MCCS` categories, `MAX_COUNTRIES` countries, `MAX_DEVICES` devices and `MAX_PLACES` places (least recently used
forgotten first).

Values for a card's first transaction (empty state): amount_z 0, amount_ratio 1, history_count 0, window counts and
sums 0 (7- and 30-day counts and mean amounts too), seconds_since_prev `MAX_GAP_S` (30 days), distance, speed,
location gap and km from known places 0, merchant/mcc/country novelty 1, device_new 1 when a device is given (else
0), device_uses 0, devices_known 0, channel_changed 0; local time uses the transaction's longitude, else UTC.

Events of one card are expected in time order (Kafka keeps a card's events in order); a late event gets a gap of 0
and is compared with the windows as of its own time.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from streams.core.events import Transaction

HOUR_S = 3600.0
DAY_S = 24 * HOUR_S
LONG_WINDOWS = (7, 30)  # days, by day buckets
MAX_GAP_S = 30 * DAY_S
MAX_WINDOW = 128
MAX_MERCHANTS = 32
MAX_MCCS = 16
MAX_COUNTRIES = 8
MAX_DEVICES = 4
MAX_PLACES = 8  # recent card-present places, rounded to 0.1 degree (about 10 km)
MIN_SPEED_GAP_S = 60.0  # speed divides by at least one minute: a few km "instantly" is not Mach 10
PRIOR_LOG_STD = 0.5  # prior spread of log-amounts, weighted as PRIOR_WEIGHT observations
PRIOR_WEIGHT = 2.0
NIGHT_HOURS = (0.0, 5.0)  # local solar time [00:00, 05:00)
EARTH_DIAMETER_KM = 12_742.0

CARD_FEATURES: list[str] = [
    "amount",  # in the reference currency (major units)
    "amount_z",  # z-score of log(amount) against the card's history (prior-smoothed spread)
    "amount_z_category",  # the same against the card's history in this merchant category (0 when it has none)
    "amount_ratio",  # amount / the card's usual amount (geometric mean of earlier amounts)
    "history_count",  # earlier transactions of the card
    "count_1h",  # earlier transactions in the last hour (t - 1 h, t]
    "sum_1h",
    "count_24h",  # earlier transactions in the last 24 h (t - 24 h, t]
    "sum_24h",
    "seconds_since_prev",  # since the card's previous transaction, capped at MAX_GAP_S
    "distance_km",  # great-circle distance from the card's previous located transaction
    "speed_kmh",  # distance / time since that transaction (at least MIN_SPEED_GAP_S)
    "location_gap_min",  # minutes since that located transaction
    "km_from_known_places",  # distance to the nearest of the card's recent card-present places
    "merchant_new",  # 1 if the merchant is not among the card's recent merchants
    "mcc_new",  # 1 if the merchant category is not among the card's recent categories
    "country_new",  # 1 if the country is not among the card's recent countries
    "device_new",  # 1 if a device is given and not among the card's known devices
    "device_uses",  # earlier uses of this device on the card (0 if none or new)
    "devices_known",  # devices the card has used (at most MAX_DEVICES)
    "channel_online",  # 1 for card-not-present (online) purchases
    "channel_changed",  # 1 if the channel differs from the card's previous transaction
    "local_hour",  # local solar time in hours [0, 24): UTC + longitude / 15
    "night",  # 1 if local_hour is in [0, 5)
    "count_7d",  # earlier transactions on this day and the 6 before it
    "mean_amount_7d",  # their mean amount (0 when none)
    "count_30d",  # the same over 30 days
    "mean_amount_30d",
    "card_known_fraud",  # 1 if a fraud on this card was confirmed before t
]
CARD_INDEX: dict[str, int] = {name: i for i, name in enumerate(CARD_FEATURES)}


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points in km (mean Earth radius 6,371 km)."""
    p1, q1, p2, q2 = map(math.radians, (lat1, lon1, lat2, lon2))
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin((q2 - q1) / 2) ** 2
    return EARTH_DIAMETER_KM * math.asin(math.sqrt(min(1.0, h)))


def _touch(items: tuple[str, ...], item: str, cap: int) -> tuple[str, ...]:
    """LRU update: `item` becomes the most recent, the oldest falls off beyond `cap`."""
    kept = (*(x for x in items if x != item), item)
    return kept[-cap:]


@dataclass(frozen=True)
class CardState:
    """Everything remembered about one card (immutable; `update` returns a new one)."""

    n: int = 0  # transactions seen
    mean_log: float = 0.0  # Welford running mean of log(amount)
    m2_log: float = 0.0  # Welford running sum of squared deviations of log(amount)
    last_ts: float | None = None  # newest event time seen (Unix seconds)
    last_channel: str | None = None
    last_lat: float | None = None  # the previous located (card-present) transaction
    last_lon: float | None = None
    last_loc_ts: float | None = None
    window: tuple[tuple[float, float], ...] = ()  # (ts, amount) of the last 24 h, oldest first
    merchants: tuple[str, ...] = ()
    mccs: tuple[str, ...] = ()
    mcc_logs: tuple[tuple[str, int, float, float], ...] = ()  # (mcc, n, Welford mean, m2) of log amounts, LRU
    countries: tuple[str, ...] = ()
    devices: tuple[tuple[str, int], ...] = ()  # (device id, uses), least recently used first
    places: tuple[tuple[float, float], ...] = ()  # rounded (lat, lon), least recently used first
    days: tuple[tuple[int, int, float], ...] = ()  # (day, count, amount sum) of the last 30 days, oldest first
    fraud_known_at: float | None = None  # from when a confirmed fraud on the card counts (Unix seconds)

    def to_dict(self) -> dict[str, Any]:
        """Every field as it is: JSON-ready (tuples are written as arrays), not a copy of the tuples (this runs for
        every changed card of every batch)."""
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CardState:
        """Inverse of `to_dict` (accepts what JSON gives back)."""
        values = dict(data)
        values["window"] = tuple((float(t), float(a)) for t, a in values.get("window", ()))
        values["devices"] = tuple((str(d), int(u)) for d, u in values.get("devices", ()))
        values["places"] = tuple((float(a), float(b)) for a, b in values.get("places", ()))
        values["days"] = tuple((int(d), int(n), float(a)) for d, n, a in values.get("days", ()))
        values["mcc_logs"] = tuple((str(c), int(n), float(m), float(q)) for c, n, m, q in values.get("mcc_logs", ()))
        for name in ("merchants", "mccs", "countries"):
            values[name] = tuple(values.get(name, ()))
        return cls(**values)

    @property
    def log_std(self) -> float:
        """Spread of log(amount): Welford variance smoothed towards PRIOR_LOG_STD (defined from n = 1)."""
        return _smoothed_std(self.n, self.m2_log)


def _smoothed_std(n: int, m2: float) -> float:
    """A Welford spread smoothed towards PRIOR_LOG_STD, defined from n = 1."""
    return math.sqrt((m2 + PRIOR_WEIGHT * PRIOR_LOG_STD**2) / (n - 1 + PRIOR_WEIGHT))


def _welford(n: int, mean: float, m2: float, x: float) -> tuple[int, float, float]:
    """One Welford step: count, mean and sum of squared deviations after `x`."""
    n += 1
    delta = x - mean
    mean += delta / n
    return n, mean, m2 + delta * (x - mean)


def _window_stats(window: tuple[tuple[float, float], ...], t: float, span: float) -> tuple[int, float]:
    """Count and sum of amounts with t - span < ts <= t (the window is sorted by time)."""
    count, total = 0, 0.0
    for ts, amount in reversed(window):
        if ts <= t - span:
            break
        if ts <= t:
            count, total = count + 1, total + amount
    return count, total


def _local_hour(t: float, lon: float | None) -> float:
    """Local solar hour of day for Unix time t at longitude lon (UTC when unknown)."""
    return ((t / HOUR_S) + (lon or 0.0) / 15.0) % 24.0


def features_of(state: CardState, txn: Transaction, amount: float) -> np.ndarray:
    """The feature vector of `txn` (its amount in the reference currency) against the card's history (the state
    is not changed)."""
    t = txn.ts.timestamp()
    log_amount = math.log(amount)
    f = np.zeros(len(CARD_FEATURES), dtype=np.float64)
    f[CARD_INDEX["amount"]] = amount
    f[CARD_INDEX["history_count"]] = state.n
    if state.n:
        f[CARD_INDEX["amount_z"]] = (log_amount - state.mean_log) / state.log_std
        f[CARD_INDEX["amount_ratio"]] = amount / math.exp(state.mean_log)
    else:
        f[CARD_INDEX["amount_ratio"]] = 1.0
    for mcc, n, mean, m2 in state.mcc_logs:
        if mcc == txn.mcc:
            f[CARD_INDEX["amount_z_category"]] = (log_amount - mean) / _smoothed_std(n, m2)
    f[CARD_INDEX["count_1h"]], f[CARD_INDEX["sum_1h"]] = _window_stats(state.window, t, HOUR_S)
    f[CARD_INDEX["count_24h"]], f[CARD_INDEX["sum_24h"]] = _window_stats(state.window, t, DAY_S)
    gap = MAX_GAP_S if state.last_ts is None else min(max(t - state.last_ts, 0.0), MAX_GAP_S)
    f[CARD_INDEX["seconds_since_prev"]] = gap
    if txn.lat is not None and txn.lon is not None and state.last_lat is not None and state.last_lon is not None:
        km = haversine_km(state.last_lat, state.last_lon, txn.lat, txn.lon)
        loc_gap = max(t - (state.last_loc_ts or t), 0.0)
        f[CARD_INDEX["distance_km"]] = km
        f[CARD_INDEX["speed_kmh"]] = km * HOUR_S / max(loc_gap, MIN_SPEED_GAP_S)
        f[CARD_INDEX["location_gap_min"]] = loc_gap / 60.0
    if txn.lat is not None and txn.lon is not None and state.places:
        f[CARD_INDEX["km_from_known_places"]] = min(haversine_km(a, b, txn.lat, txn.lon) for a, b in state.places)
    f[CARD_INDEX["merchant_new"]] = txn.merchant_id not in state.merchants
    f[CARD_INDEX["mcc_new"]] = txn.mcc not in state.mccs
    f[CARD_INDEX["country_new"]] = txn.country not in state.countries
    uses = dict(state.devices)
    if txn.device_id is not None:
        f[CARD_INDEX["device_new"]] = txn.device_id not in uses
        f[CARD_INDEX["device_uses"]] = uses.get(txn.device_id, 0)
    f[CARD_INDEX["devices_known"]] = len(uses)
    f[CARD_INDEX["channel_online"]] = txn.channel == "online"
    f[CARD_INDEX["channel_changed"]] = state.last_channel is not None and txn.channel != state.last_channel
    hour = _local_hour(t, txn.lon if txn.lon is not None else state.last_lon)
    f[CARD_INDEX["local_hour"]] = hour
    f[CARD_INDEX["night"]] = NIGHT_HOURS[0] <= hour < NIGHT_HOURS[1]
    today = math.floor(t / DAY_S)
    for days in LONG_WINDOWS:
        count, total = 0, 0.0
        for day, n, amounts in state.days:
            if today - days < day <= today:
                count, total = count + n, total + amounts
        f[CARD_INDEX[f"count_{days}d"]] = count
        f[CARD_INDEX[f"mean_amount_{days}d"]] = total / count if count else 0.0
    f[CARD_INDEX["card_known_fraud"]] = state.fraud_known_at is not None and state.fraud_known_at <= t
    return f


def _add_day(days: tuple[tuple[int, int, float], ...], day: int, amount: float, newest_day: int
             ) -> tuple[tuple[int, int, float], ...]:
    """Day buckets with `amount` added to `day`, sorted, pruned to the last LONG_WINDOWS[-1] days."""
    oldest = newest_day - LONG_WINDOWS[-1]
    if days and days[-1][0] == day:  # the usual case: another payment today
        last = days[-1]
        kept = (*days[:-1], (day, last[1] + 1, last[2] + amount))
    elif not days or days[-1][0] < day:  # the first payment of a new day
        kept = (*days, (day, 1, amount))
    else:  # a late payment of an earlier day
        buckets = {d: (n, a) for d, n, a in days}
        n, a = buckets.get(day, (0, 0.0))
        buckets[day] = (n + 1, a + amount)
        kept = tuple((d, n, a) for d, (n, a) in sorted(buckets.items()))
    return kept if kept[0][0] > oldest else tuple(entry for entry in kept if entry[0] > oldest)


def _add_category(mcc_logs: tuple[tuple[str, int, float, float], ...], mcc: str, log_amount: float
                  ) -> tuple[tuple[str, int, float, float], ...]:
    """The categories' log-amount statistics after a payment in `mcc`, which becomes the most recent (LRU)."""
    others = tuple(entry for entry in mcc_logs if entry[0] != mcc)
    found = next((entry for entry in mcc_logs if entry[0] == mcc), (mcc, 0, 0.0, 0.0))
    return (*others, (mcc, *_welford(found[1], found[2], found[3], log_amount)))[-MAX_MCCS:]


def absorb(state: CardState, txn: Transaction, amount: float) -> CardState:
    """The state after `txn` (Welford step, windows pruned to 24 h and capped, LRU sets touched)."""
    t = txn.ts.timestamp()
    log_amount = math.log(amount)
    n, mean, m2 = _welford(state.n, state.mean_log, state.m2_log, log_amount)
    newest = t if state.last_ts is None else max(state.last_ts, t)
    window = list(state.window)
    bisect.insort(window, (t, amount), key=lambda pair: pair[0])
    keep = bisect.bisect_right(window, newest - DAY_S, key=lambda pair: pair[0])
    window = window[max(keep, len(window) - MAX_WINDOW) :]
    located = txn.lat is not None and txn.lon is not None and (state.last_loc_ts is None or t >= state.last_loc_ts)
    devices = state.devices
    places = state.places
    if txn.lat is not None and txn.lon is not None:
        place = (round(txn.lat, 1), round(txn.lon, 1))
        places = (*(p for p in places if p != place), place)[-MAX_PLACES:]
    if txn.device_id is not None:
        uses = dict(devices).get(txn.device_id, 0) + 1
        devices = (*((d, u) for d, u in devices if d != txn.device_id), (txn.device_id, uses))[-MAX_DEVICES:]
    return replace(
        state,
        n=n,
        mean_log=mean,
        m2_log=m2,
        last_ts=newest,
        last_channel=txn.channel if t >= newest else state.last_channel,
        last_lat=txn.lat if located else state.last_lat,
        last_lon=txn.lon if located else state.last_lon,
        last_loc_ts=t if located else state.last_loc_ts,
        window=tuple(window),
        merchants=_touch(state.merchants, txn.merchant_id, MAX_MERCHANTS),
        mccs=_touch(state.mccs, txn.mcc, MAX_MCCS),
        mcc_logs=_add_category(state.mcc_logs, txn.mcc, log_amount),
        countries=_touch(state.countries, txn.country, MAX_COUNTRIES),
        devices=devices,
        places=places,
        days=_add_day(state.days, math.floor(t / DAY_S), amount, math.floor(newest / DAY_S)),
    )


def update(state: CardState | None, txn: Transaction, amount: float) -> tuple[CardState, np.ndarray]:
    """Features of `txn` (amount in the reference currency) against the card's history, and the card's new state
    (None: a card never seen)."""
    state = state or CardState()
    return absorb(state, txn, amount), features_of(state, txn, amount)


def mark_fraud(state: CardState | None, reported_t: float) -> CardState:
    """The card's state after a fraud on it was confirmed at `reported_t`: it counts from the next full hour."""
    state = state or CardState()
    known = (math.floor(reported_t / HOUR_S) + 1) * HOUR_S
    if state.fraud_known_at is not None and state.fraud_known_at <= known:
        return state
    return replace(state, fraud_known_at=known)
