"""News generator: headlines about fictional companies, bullish/bearish/neutral, with a negative-surge scenario.

All company names, tickers and sentences are invented for this project. Truth: the sentiment label
(negative/neutral/positive) and whether the item belongs to the injected surge.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from streams.generators.timeline import Simulation

COMPANIES: list[tuple[str, str, str]] = [
    ("Quillfeather Labs", "QFL", "software"),
    ("Brightmoor Energy", "BMRE", "energy"),
    ("Cobalt Harbor Shipping", "CHS", "logistics"),
    ("Veridian Foods", "VRDF", "consumer goods"),
    ("Northgale Pharmaceuticals", "NGP", "pharma"),
    ("Tessellate Semiconductor", "TSSL", "chips"),
    ("Amberline Bank", "AMBL", "banking"),
    ("Kestrel Aerospace", "KSTR", "aerospace"),
    ("Lumenwick Retail", "LWR", "retail"),
    ("Oakridge Mining", "OKRM", "mining"),
    ("Pinecrest Insurance", "PNCI", "insurance"),
    ("Solvane Chemicals", "SLVC", "chemicals"),
    ("Driftwood Media", "DWM", "media"),
    ("Halcyon Motors", "HLCM", "automotive"),
    ("Ironvale Steel", "IRVS", "steel"),
    ("Marigold Telecom", "MGT", "telecom"),
    ("Nimbus Cloudworks", "NMBC", "cloud computing"),
    ("Pellucid Optics", "PLO", "hardware"),
    ("Redfern Biotech", "RFB", "biotech"),
    ("Saltmarsh Water", "SMW", "utilities"),
    ("Thistledown Apparel", "TDA", "apparel"),
    ("Umberfield Realty", "UMBR", "real estate"),
    ("Wrenfield Robotics", "WRNR", "industrial automation"),
    ("Zephyrine Airlines", "ZPHA", "airlines"),
    ("Glasswing Payments", "GLWP", "payments"),
    ("Foxhollow Games", "FXG", "video games"),
    ("Emberstone Hotels", "EMBH", "hospitality"),
    ("Clearbrook Medical", "CLBM", "medical devices"),
    ("Bluefen Agritech", "BFA", "agriculture"),
    ("Copperleaf Networks", "CPLN", "networking"),
]
SOURCES = ["Harbor Ledger", "Meridian Wire", "Tidewater Markets", "The Quarterly Lantern", "Northstar Newsdesk"]
REGIONS = ["Northern Europe", "Southeast Asia", "Latin America", "the Gulf region", "West Africa", "Canada"]
CITIES = ["Rotterdam", "Osaka", "Denver", "Lyon", "Porto", "Gdansk", "Perth", "Valencia"]
PRODUCTS = ["its flagship platform", "a next-generation line", "its budget range", "a new subscription tier"]
PEOPLE = ["Ines Varga", "Tomas Ekwueme", "Mara Lindqvist", "Devon Achterberg", "Priya Solano"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]

HEADLINES: dict[str, list[str]] = {
    "positive": [
        "{co} beats {q} earnings estimates as revenue climbs {pct}%",
        "{co} raises full-year guidance on strong demand",
        "{co} shares jump {pct}% after upbeat outlook",
        "{co} wins {amount} contract in {region}",
        "Analysts upgrade {co} ({tk}) to buy, citing wider margins",
        "{co} announces {amount} share buyback",
        "{co} reports record {q} sales",
        "{co} secures regulatory approval for {product}",
        "{co} lifts its dividend for a tenth straight year",
        "{co} expands into {region} through new partnership",
        "{co} ({tk}) rallies as orders outpace forecasts",
        "{co} posts surprise profit and shares climb",
        "{co} launches {product} to strong early reviews",
        "{co} pays down debt ahead of schedule as outlook brightens",
        "{co} signs multi-year supply deal worth {amount}",
        "Investors cheer {co} turnaround as losses narrow",
        "Strong {q} cash flow sends {co} to a yearly high",
    ],
    "negative": [
        "{co} misses {q} estimates as sales slump {pct}%",
        "{co} cuts full-year guidance, citing weak demand",
        "{co} shares tumble {pct}% after profit warning",
        "Regulators open investigation into {co} accounting",
        "{co} recalls {product} over safety concerns",
        "{co} ({tk}) downgraded to sell on mounting losses",
        "{co} suspends dividend as cash runs low",
        "{co} chief executive resigns abruptly amid board dispute",
        "{co} faces {amount} lawsuit over {product}",
        "{co} to cut {pct}% of its workforce",
        "Plant shutdown halts {co} production in {region}",
        "{co} loses its largest customer and shares slide",
        "Data breach at {co} exposes customer records",
        "{co} misses bond payment; rating cut to junk",
        "{co} delays {product} again as investors flee",
        "Short seller accuses {co} of inflating revenue",
        "{co} ({tk}) hits multi-year low after weak {q} results",
        "{co} writes down {amount} on failed acquisition",
    ],
    "neutral": [
        "{co} to report {q} results on {weekday}",
        "{co} appoints new chief financial officer",
        "{co} holds annual shareholder meeting in {city}",
        "{co} ({tk}) trades flat ahead of industry conference",
        "{co} confirms date for investor day",
        "{co} moves its headquarters within {city}",
        "{co} completes previously announced reorganization",
        "{co} files routine quarterly report",
        "{co} names {person} to its board of directors",
        "{co} to present at {sector} conference in {city}",
        "{co} shares unchanged as markets await rate decision",
        "{co} publishes annual sustainability report",
        "{co} renews office lease in {city}",
    ],
}
BODIES: dict[str, list[str]] = {
    "positive": [
        "Management said momentum in {sector} carried into the new quarter.",
        "The company expects margins to keep improving through next year.",
        "Several analysts raised their price targets after the announcement.",
    ],
    "negative": [
        "The company warned that conditions in {sector} could worsen further.",
        "Analysts said the news raises questions about the balance sheet.",
        "Trading was briefly halted after the shares fell sharply.",
    ],
    "neutral": [
        "A spokesperson said the change had been planned for some time.",
        "The company did not comment beyond its filing.",
        "No change to the financial outlook was announced.",
    ],
}
TONES = ("positive", "negative", "neutral")
TONE_WEIGHTS = (0.3, 0.3, 0.4)


class NewsGenerator(Simulation):
    """Background news at `rate_per_s`, plus optional surges of negative items: one about `surge_ticker` at
    `surge_at_s`, and one per (ticker, start in seconds) of `surges`, each `surge_count` items over
    `surge_duration_s`."""

    time_field = "published_at"

    def __init__(
        self,
        *,
        seed: int,
        start: datetime,
        rate_per_s: float = 2.0,
        surge_ticker: str | None = None,
        surge_at_s: float = 30.0,
        surge_duration_s: float = 60.0,
        surge_count: int = 20,
        surges: Sequence[tuple[str, float]] = (),
    ) -> None:
        super().__init__(seed=seed, start=start, rate_per_s=rate_per_s)
        by_ticker = {ticker: (name, ticker, sector) for name, ticker, sector in COMPANIES}
        planted = [(surge_ticker, surge_at_s)] if surge_ticker is not None else []
        for ticker, at_s in [*planted, *surges]:
            if ticker.upper() not in by_ticker:
                raise ValueError(f"unknown ticker {ticker!r}; known: {', '.join(sorted(by_ticker))}")
            company = by_ticker[ticker.upper()]
            for index in range(surge_count):
                offset = at_s + surge_duration_s * index / max(surge_count, 1)
                self._schedule(offset, "negative", company, scenario="surge")

    def _fill(self, template: str, company: tuple[str, str, str]) -> str:
        """Fill a template's slots from the random source."""
        rng = self.rng
        name, ticker, sector = company
        return template.format(
            co=name,
            tk=ticker,
            sector=sector,
            q=f"Q{rng.randint(1, 4)}",
            pct=rng.randint(3, 38),
            amount=f"${rng.randint(2, 95) / 10:.1f} billion",
            region=rng.choice(REGIONS),
            city=rng.choice(CITIES),
            product=rng.choice(PRODUCTS),
            person=rng.choice(PEOPLE),
            weekday=rng.choice(WEEKDAYS),
        )

    def _schedule(self, offset: float, tone: str, company: tuple[str, str, str], scenario: str | None) -> None:
        """Write one item of the given tone about a company and schedule it."""
        rng = self.rng
        record: dict[str, object] = {
            "id": self.new_id("news"),
            "published_at": None,
            "source": rng.choice(SOURCES),
            "headline": self._fill(rng.choice(HEADLINES[tone]), company),
            "tickers": [company[1]],
        }
        if rng.random() < 0.7:
            record["body"] = self._fill(rng.choice(BODIES[tone]), company)
        self.at(offset, record, {"id": record["id"], "label": tone, "ticker": company[1], "scenario": scenario})

    def step(self, t: float) -> None:
        """One background news item with a random tone about a random company."""
        tone = self.rng.choices(TONES, TONE_WEIGHTS)[0]
        self._schedule(t, tone, self.rng.choice(COMPANIES), scenario=None)
