"""The surge stage, keyed by ticker: negative-news windows in a table, one alert per surge.

News is keyed by news id, so one ticker's headlines are spread over every partition and worker. The sentiment stage
therefore sends each ticker's scored headlines of a micro-batch to `news.by-ticker`, keyed by ticker; this stage,
the one owner of a ticker's partition, folds them into the ticker's window (`models/surge.py`) kept in the
`surge-windows` table (changelog-backed: a restart or a rebalance restores it on the new owner) and raises an alert
when a surge begins. A message is processed whole and in log order, whatever micro-batch it falls in, so a batch
replayed after a crash repeats exactly what was done (the same alert id); the window records the position it covers
(a replayed message is skipped) and the ids it counted (a headline the sentiment stage scored twice counts once).
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass

from models.surge import Surge, SurgeDetector, TickerMentions, TickerWindow
from streams.core.decoding import Decoder
from streams.core.events import Alert, utc_now
from streams.core.record import Record
from streams.core.settings import Settings
from streams.worker.checkpoint import Checkpoint, Outputs
from streams.worker.keyed_state import Keyed, KeyedTable
from streams.worker.pipeline import Pipeline


@dataclass(frozen=True)
class TickerStep:
    """One message of a ticker: its window after it, and the surges it began."""

    record: Record
    event: TickerMentions
    keyed: Keyed[TickerWindow]
    surges: tuple[Surge, ...]

    @property
    def records(self) -> tuple[Record]:
        return (self.record,)


def latest_of(steps: Iterable[TickerStep]) -> dict[str, Keyed[TickerWindow]]:
    """Each ticker's window after the last of its steps."""
    return {step.event.ticker: step.keyed for step in steps}


class SurgePipeline(Pipeline[TickerMentions, TickerStep]):
    """Everything the surge stage does with a micro-batch of news.by-ticker."""

    event_model = TickerMentions

    def __init__(self, settings: Settings, decoder: Decoder, checkpoint: Checkpoint,
                 windows: MutableMapping[bytes, dict], detector: SurgeDetector) -> None:
        super().__init__(settings, decoder, checkpoint, settings.topics.news_by_ticker)
        # a window changes in place as headlines fold in, so it is parsed afresh for every batch (no cache): a batch
        # that fails before its commit leaves the stored window as it was
        self.windows = KeyedTable(windows, TickerWindow.from_dict, TickerWindow.to_dict, cache_size=0)
        self.detector = detector

    def prepare(self, events: list[tuple[Record, TickerMentions]]) -> list[TickerStep]:
        """Fold each message into its ticker's window, in order; skip those the stored window already absorbed."""
        steps: list[TickerStep] = []
        tickers: dict[str, Keyed[TickerWindow]] = {}
        for record, event in events:
            keyed = tickers.get(event.ticker) or self.windows.load(event.ticker)
            if keyed.absorbed(record):
                continue
            window = keyed.state or TickerWindow()
            surges = [self.detector.step(window, event.ticker, m.t, m.neg, m.id) for m in event.mentions]
            tickers[event.ticker] = keyed = keyed.advanced(window, record)
            steps.append(TickerStep(record, event, keyed, tuple(s for s in surges if s is not None)))
        self.windows.stage(tickers)
        return steps

    async def score(self, units: list[TickerStep]) -> Sequence[None]:
        """No model here: the sentiment stage scored the headlines."""
        return [None] * len(units)

    def outputs(self, scored: list[tuple[TickerStep, None]]) -> Outputs:
        return Outputs(alerts=[self._alert(step.event, surge) for step, _ in scored for surge in step.surges],
                       alert_topic=self.settings.topics.alerts_sentiment)

    def commit(self, scored: list[tuple[TickerStep, None]]) -> None:
        """Each ticker's latest window with the position it covers."""
        for ticker, keyed in latest_of(step for step, _ in scored).items():
            self.windows.store(ticker, keyed)

    def unstage(self, units: list[TickerStep]) -> None:
        self.windows.unstage(latest_of(units))

    def _alert(self, event: TickerMentions, surge: Surge) -> Alert:
        window_s = self.settings.surge.window_s
        severity = "critical" if surge.share >= 0.9 else "high" if surge.share >= 0.75 else "medium"
        return Alert(
            alert_id=surge.alert_id, kind="sentiment", severity=severity, created_at=utc_now(),
            subject=surge.ticker,
            summary=(f"Negative news surge for {surge.ticker}: {surge.negative} of {surge.items} items negative "
                     f"in the last {window_s // 60} min, against a baseline share of "
                     f"{surge.baseline_share:.0%} (p = {surge.p_value:.1e})"),
            evidence={"negative": surge.negative, "items": surge.items, "share": surge.share,
                      "baseline_share": surge.baseline_share, "p_value": surge.p_value,
                      "window_s": window_s, "started_at": surge.started_at.isoformat()},
            event_ids=surge.event_ids, model_name=event.model_name, model_version=event.model_version,
        )
