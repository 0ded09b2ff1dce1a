"""Reason codes: per-feature attributions grouped into what a risk analyst checks, then put into words.

A group's attribution is the sum of its features' attributions (towards fraud when positive). The top three
positive groups become the reasons, worded from the raw feature values, for example "amount 14 times the
card's usual (25.00 EUR)" (written with the multiplication sign), "1,240 km from previous transaction 20 min
earlier (3,720 km/h)", "5 transactions in the last hour (1,020.00 EUR in total)", "merchant: 12 of 40 payments
(30%) in the 7 days ending a week ago confirmed as fraud", "new device", "03:12 local night-time". Amounts are in
the reference currency, with the amount as paid beside them when it was another currency.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from models.card_features import MAX_GAP_S
from models.fraud_features import FEATURE_NAMES, INDEX

Values = Mapping[str, float]

GROUPS: dict[str, tuple[str, ...]] = {
    "amount": ("amount", "amount_z", "amount_z_category", "amount_ratio", "mean_amount_7d", "mean_amount_30d"),
    "travel": ("distance_km", "speed_kmh", "location_gap_min", "km_from_known_places"),
    "velocity": ("count_1h", "sum_1h", "count_24h", "sum_24h"),
    "activity": ("count_7d", "count_30d"),
    "card_fraud": ("card_known_fraud",),
    "merchant_risk": ("merchant_count_1d", "merchant_count_7d", "merchant_count_30d", "merchant_fraud_rate_1d",
                      "merchant_fraud_rate_7d", "merchant_fraud_rate_30d", "merchant_frauds_30d"),
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


@dataclass(frozen=True)
class Wording:
    """What the words need besides the features: the typical (median legitimate) amount, the reference currency,
    the amount as paid when it was another currency, and the label delay of the merchant windows."""

    typical: float = 40.0
    currency: str = "EUR"
    paid: str | None = None
    delay_days: int = 7

    def money(self, value: float) -> str:
        """1234.5 -> '1,234.50 EUR'."""
        return f"{value:,.2f} {self.currency}"

    def amount(self, value: float) -> str:
        """The transaction's amount, with the amount as paid beside it when it differs."""
        return f"{self.money(value)} ({self.paid})" if self.paid else self.money(value)


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


def _amount(f: Values, w: Wording) -> str:
    usual = f["amount"] / f["amount_ratio"]
    amount, typical = w.amount(f["amount"]), w.typical
    if f["history_count"] > 0 and f["amount_ratio"] >= 1.5:
        return f"amount {amount}, {times(f['amount_ratio'])} the card's usual ({w.money(usual)})"
    if f["history_count"] > 0 and f["amount_ratio"] <= 0.5:
        return f"amount {amount}, far below the card's usual {w.money(usual)}"
    if f["amount"] <= typical / 5:
        return f"amount {amount}, tiny for any card (a typical purchase is {w.money(typical)})"
    if f["amount"] >= typical * 5:
        return f"amount {amount}, large for any card (a typical purchase is {w.money(typical)})"
    if f["history_count"] == 0:
        return f"amount {amount} on a card with no history"
    return f"amount {amount} (the card's usual is {w.money(usual)})"


def _travel(f: Values) -> str | None:
    if f["distance_km"] < 1:
        if f["km_from_known_places"] >= 1:
            return f"{f['km_from_known_places']:,.0f} km from every place the card was used recently"
        return None
    return (
        f"{f['distance_km']:,.0f} km from previous transaction {duration(f['location_gap_min'] * 60)} earlier "
        f"({f['speed_kmh']:,.0f} km/h)"
    )


def _velocity(f: Values, w: Wording) -> str:
    if f["count_1h"] >= 1:
        count, total, span = f["count_1h"], f["sum_1h"], "hour"
    else:
        count, total, span = f["count_24h"], f["sum_24h"], "24 h"
    noun = "transaction" if count == 1 else "transactions"
    return f"{count:.0f} earlier {noun} in the last {span} ({w.money(total)} in total)"


def _activity(f: Values, w: Wording) -> str:
    count, days, mean = (f["count_7d"], 7, f["mean_amount_7d"]) if f["count_7d"] else (
        f["count_30d"], 30, f["mean_amount_30d"])
    if not count:
        return "no earlier transaction of this card in 30 days"
    return f"{count:.0f} earlier transaction{'s' if count != 1 else ''} in {days} days (mean {w.money(mean)})"


def _merchant_risk(f: Values, w: Wording) -> str | None:
    """The merchant's confirmed-fraud rate, from the window with the most telling evidence."""
    for days in (7, 30, 1):
        count, rate = f[f"merchant_count_{days}d"], f[f"merchant_fraud_rate_{days}d"]
        if count and rate > 0:
            frauds = round(rate * count)
            ending = f"ending {w.delay_days} days ago" if w.delay_days else "up to today"
            return (f"merchant's confirmed fraud: {frauds:.0f} of its {count:,.0f} payments in the {days} "
                    f"day{'s' if days != 1 else ''} {ending} ({rate:.0%})")
    if f["merchant_count_30d"] == 0:
        return "merchant with no payments seen in the 30 days before the outcome delay"
    return None


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


def _card_fraud(f: Values) -> str | None:
    return "a fraud on this card was confirmed earlier" if f["card_known_fraud"] >= 0.5 else None


WORDING: dict[str, Callable[[Values], str | None]] = {
    "travel": _travel,
    "card_fraud": _card_fraud,
    "pace": _pace,
    "history": _history,
    "merchant": _flag("merchant_new", "first purchase at this merchant"),
    "category": _flag("mcc_new", "first purchase in this merchant category"),
    "country": _flag("country_new", "first transaction in this country"),
    "device": _device,
    "channel": _channel,
    "time": _time,
}


GROUP_NAMES = list(GROUPS)
GROUP_MATRIX = np.zeros((len(FEATURE_NAMES), len(GROUP_NAMES)))  # [features, groups]: 1 where a feature belongs
for _feature, _group in GROUP_OF.items():
    GROUP_MATRIX[INDEX[_feature], GROUP_NAMES.index(_group)] = 1.0
WITH_MONEY: dict[str, Callable[[Values, Wording], str | None]] = {
    "amount": _amount, "velocity": _velocity, "activity": _activity, "merchant_risk": _merchant_risk}


def group_attributions(attributions: np.ndarray) -> tuple[list[str], np.ndarray]:
    """[n, features] attributions -> group names and [n, groups] sums."""
    return GROUP_NAMES, attributions @ GROUP_MATRIX


def reasons_for(raw: np.ndarray, attributions: np.ndarray, wording: Wording | None = None, k: int = TOP_K,
                grouped: np.ndarray | None = None) -> list[tuple[str, str]]:
    """Up to `k` (code, words) for one row: the groups pushing most towards fraud that have something to say
    (`grouped`: the row's group sums, when the caller grouped a whole batch at once)."""
    w = wording or Wording()
    sums = attributions @ GROUP_MATRIX if grouped is None else grouped
    values: Values | None = None
    reasons: list[tuple[str, str]] = []
    for j in np.argsort(-sums, kind="stable"):
        if sums[j] <= 0 or len(reasons) == k:
            break
        values = values or dict(zip(FEATURE_NAMES, raw.tolist(), strict=True))
        name = GROUP_NAMES[j]
        text = WITH_MONEY[name](values, w) if name in WITH_MONEY else WORDING[name](values)
        if text and text not in (words for _, words in reasons):
            reasons.append((name, text))
    return reasons
