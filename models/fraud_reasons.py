"""Reason codes: per-feature attributions grouped into what a risk analyst checks, then put into words.

A group's attribution is the sum of its features' attributions (towards fraud when positive). The top three
positive groups become the reasons, worded from the raw feature values, for example "amount 14 times the
card's usual (25.00)" (written with the multiplication sign), "1,240 km from previous transaction 20 min
earlier (3,720 km/h)", "5 transactions in the last hour (1,020.00 in total)", "first purchase at this
merchant", "new device", "03:12 local night-time".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from models.fraud_features import FEATURE_NAMES, INDEX, MAX_GAP_S

Values = Mapping[str, float]

GROUPS: dict[str, tuple[str, ...]] = {
    "amount": ("amount", "amount_z", "amount_ratio"),
    "travel": ("distance_km", "speed_kmh", "location_gap_min", "km_from_known_places"),
    "velocity": ("count_1h", "sum_1h", "count_24h", "sum_24h"),
    "pace": ("seconds_since_prev",),
    "history": ("history_count",),
    "merchant": ("merchant_new",),
    "category": ("mcc_new",),
    "country": ("country_new",),
    "device": ("device_new", "device_uses", "devices_known"),
    "channel": ("channel_online", "channel_changed"),
    "time": ("local_hour", "night"),
}
GROUP_OF: dict[str, str] = {feature: group for group, members in GROUPS.items() for feature in members}
TOP_K = 3
TIMES_SIGN = "\u00d7"


def money(value: float) -> str:
    """1234.5 -> '1,234.50'."""
    return f"{value:,.2f}"


def duration(seconds: float) -> str:
    """A short human duration: '45 s', '20 min', '3 h 5 min', '2 days'."""
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        hours, minutes = divmod(round(seconds / 60), 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{seconds / 86400:.0f} days"


def times(ratio: float) -> str:
    """A multiplier with the multiplication sign: 14.2 -> '14', 3.46 -> '3.5', each followed by the sign."""
    return f"{ratio:,.0f}{TIMES_SIGN}" if ratio >= 10 else f"{ratio:.1f}{TIMES_SIGN}"


def _amount(f: Values, typical: float) -> str:
    usual = f["amount"] / f["amount_ratio"]
    if f["history_count"] > 0 and f["amount_ratio"] >= 1.5:
        return f"amount {times(f['amount_ratio'])} the card's usual ({money(usual)})"
    if f["history_count"] > 0 and f["amount_ratio"] <= 0.5:
        return f"amount {money(f['amount'])}, far below the card's usual {money(usual)}"
    if f["amount"] <= typical / 5:
        return f"amount {money(f['amount'])}, tiny for any card (a typical purchase is {money(typical)})"
    if f["amount"] >= typical * 5:
        return f"amount {money(f['amount'])}, large for any card (a typical purchase is {money(typical)})"
    if f["history_count"] == 0:
        return f"amount {money(f['amount'])} on a card with no history"
    return f"amount {money(f['amount'])} (the card's usual is {money(usual)})"


def _travel(f: Values) -> str | None:
    if f["distance_km"] < 1:
        if f["km_from_known_places"] >= 1:
            return f"{f['km_from_known_places']:,.0f} km from every place the card was used recently"
        return None
    return (
        f"{f['distance_km']:,.0f} km from previous transaction {duration(f['location_gap_min'] * 60)} earlier "
        f"({f['speed_kmh']:,.0f} km/h)"
    )


def _velocity(f: Values) -> str:
    if f["count_1h"] >= 1:
        count, total, span = f["count_1h"], f["sum_1h"], "hour"
    else:
        count, total, span = f["count_24h"], f["sum_24h"], "24 h"
    noun = "transaction" if count == 1 else "transactions"
    return f"{count:.0f} earlier {noun} in the last {span} ({money(total)} in total)"


def _pace(f: Values) -> str:
    if f["history_count"] == 0 or f["seconds_since_prev"] >= MAX_GAP_S:
        return "no earlier transaction of this card in 30 days"
    return f"previous transaction {duration(f['seconds_since_prev'])} earlier"


def _history(f: Values) -> str:
    count = int(f["history_count"])
    if count == 0:
        return "first transaction seen for this card"
    return f"card with little history ({count} earlier transaction{'s' if count != 1 else ''})"


def _flag(feature: str, text: str) -> Callable[[Values], str | None]:
    """Words for a novelty flag; on a card's first transaction everything is new, so say that instead."""
    return lambda f: (text if f["history_count"] else _history(f)) if f[feature] >= 0.5 else None


def _device(f: Values) -> str | None:
    if f["device_new"] >= 0.5:
        known = int(f["devices_known"])
        return "new device" + (f" (the card used {known} other{'s' if known != 1 else ''})" if known else "")
    if f["channel_online"] >= 0.5 and f["device_uses"] < 5:
        return f"device used only {int(f['device_uses'])} time{'s' if f['device_uses'] != 1 else ''} before"
    return None


def _channel(f: Values) -> str | None:
    online = f["channel_online"] >= 0.5
    if f["channel_changed"] >= 0.5:
        return "online (card not present), unlike the previous transaction" if online else "channel changed"
    return "online (card not present)" if online else None


def _time(f: Values) -> str:
    hour = f["local_hour"]
    minutes = round(hour * 60) % (24 * 60)
    clock = f"{minutes // 60:02d}:{minutes % 60:02d}"
    return f"{clock} local night-time" if f["night"] >= 0.5 else f"{clock} local time"


WORDING: dict[str, Callable[[Values], str | None]] = {
    "travel": _travel,
    "velocity": _velocity,
    "pace": _pace,
    "history": _history,
    "merchant": _flag("merchant_new", "first purchase at this merchant"),
    "category": _flag("mcc_new", "first purchase in this merchant category"),
    "country": _flag("country_new", "first transaction in this country"),
    "device": _device,
    "channel": _channel,
    "time": _time,
}


def group_attributions(attributions: np.ndarray) -> tuple[list[str], np.ndarray]:
    """[n, features] attributions -> group names and [n, groups] sums."""
    names = list(GROUPS)
    matrix = np.zeros((len(FEATURE_NAMES), len(names)))
    for feature, group in GROUP_OF.items():
        matrix[INDEX[feature], names.index(group)] = 1.0
    return names, attributions @ matrix


def reasons_for(
    raw: np.ndarray, attributions: np.ndarray, typical_amount: float = 40.0, k: int = TOP_K
) -> list[tuple[str, str]]:
    """Up to `k` (code, words) for one row: the groups pushing most towards fraud that have something to say.

    `typical_amount` is the reference (median legitimate) amount, for amounts odd for any card.
    """
    names, grouped = group_attributions(attributions[None, :])
    values = dict(zip(FEATURE_NAMES, raw.tolist(), strict=True))
    reasons: list[tuple[str, str]] = []
    for j in np.argsort(-grouped[0], kind="stable"):
        if grouped[0, j] <= 0 or len(reasons) == k:
            break
        name = names[j]
        text = _amount(values, typical_amount) if name == "amount" else WORDING[name](values)
        if text and text not in (words for _, words in reasons):
            reasons.append((names[j], text))
    return reasons
