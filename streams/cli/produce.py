"""`lepton produce KIND` (generated or replayed events to Kafka) and `lepton generate KIND` (to a JSONL file)."""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from streams.core.events import INPUT_MODELS, ChargebackLabel, DeadLetter, InputEvent, Transaction, utc_now
from streams.generators import DEFAULT_RATES, Generated, Simulation, make_generator

console = Console(stderr=True)


class Kind(StrEnum):
    """The input kinds (each has a topic in settings.topics)."""

    news = "news"
    transactions = "transactions"
    clicks = "clicks"
    catalog = "catalog"
    labels = "labels"


def _generator(kind: Kind, seed: int, start: datetime, rate: float, options: dict[str, Any]) -> Simulation:
    """The generator for a kind, given only the options that apply to it."""
    if kind == Kind.labels:
        raise typer.BadParameter("labels (confirmed outcomes) come from your chargeback system: give --file "
                                 "(`lepton simulate fraud` writes an example feedback.jsonl)")
    wanted = {
        Kind.news: ("surge_ticker", "surge_at_s", "surge_duration_s", "surge_count"),
        Kind.transactions: ("fraud_rate", "n_cards"),
        Kind.clicks: ("n_users", "n_items"),
        Kind.catalog: ("n_items",),
    }[kind]
    chosen = {name: options[name] for name in wanted if options.get(name) is not None}
    try:
        return make_generator(kind.value, seed=seed, start=start, rate_per_s=rate or None, **chosen)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


def _event_key(event: InputEvent) -> bytes:
    """Kafka key of a validated event (the contracts: card token, merchant, user, id, item)."""
    if isinstance(event, Transaction):
        return event.card_token.encode()
    if isinstance(event, ChargebackLabel):
        return event.merchant_id.encode()
    for name in ("user_id", "id", "item_id"):
        if hasattr(event, name):
            return str(getattr(event, name)).encode()
    raise TypeError(type(event).__name__)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Numbered non-blank lines of a JSONL file ('-' reads stdin)."""
    handle = sys.stdin.buffer if str(path) == "-" else path.open("rb")
    with handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield number, line


def _pace(started: float, index: int, rate: float) -> None:
    """Sleep until event `index` is due at `rate` events per second."""
    if rate > 0:
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def produce(
    kind: Kind = typer.Argument(..., help="news | transactions | clicks | catalog | labels"),
    rate: float = typer.Option(100.0, help="events per second; 0 = as fast as possible"),
    count: int | None = typer.Option(None, min=1, help="stop after this many events"),
    duration: float | None = typer.Option(None, min=0.1, help="stop after this many seconds"),
    seed: int = typer.Option(0, help="generator seed (same seed, same events)"),
    file: Path | None = typer.Option(None, help="replay this JSONL file instead of generating ('-' = stdin)"),
    dead_letter: bool = typer.Option(False, "--dead-letter", help="send invalid file lines to the deadletter topic"),
    truth_out: Path | None = typer.Option(None, help="write the generator's ground truth here (JSONL)"),
    topic: str | None = typer.Option(None, help="topic to write to (default: settings.topics.<kind>)"),
    start: datetime | None = typer.Option(None, help="event time of the first generated event (default: now)"),
    fraud_rate: float | None = typer.Option(None, help="transactions: share of fraudulent events (0.02)"),
    surge_ticker: str | None = typer.Option(None, help="news: inject a surge of negative news about a ticker"),
    surge_at: float = typer.Option(30.0, help="news: the surge starts this many seconds after the start"),
    surge_duration: float = typer.Option(60.0, help="news: the surge lasts this many seconds"),
    surge_count: int = typer.Option(20, help="news: items in the surge"),
) -> None:
    """Publish generated events (or a JSONL file) to Kafka, keyed per the contracts, with a progress bar."""
    from streams.broker.producer import EventProducer
    from streams.core.decoding import Decoder
    from streams.core.settings import get_settings

    settings = get_settings()
    producer = EventProducer(settings)
    producer.check_connection()
    target = topic or producer.topic_for(kind.value)
    decoder = Decoder(settings, pii_key=producer.pii_key)
    invalid, unsent = 0, 0
    with ExitStack() as stack:
        truth: IO[str] | None = stack.enter_context(truth_out.open("w")) if truth_out else None
        progress = stack.enter_context(
            Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
            )
        )
        total = count if count is not None else duration
        task = progress.add_task(f"{kind.value} -> {target}", total=total)
        started, last_update = time.monotonic(), 0.0
        if file is not None:
            source: Iterator[Any] = _lines(file)
        else:
            sim_rate = rate or DEFAULT_RATES[kind.value]
            first = start or (utc_now() - timedelta(seconds=(count or 0) / sim_rate if rate == 0 else 0))
            options = {
                "fraud_rate": fraud_rate,
                "surge_ticker": surge_ticker,
                "surge_at_s": surge_at,
                "surge_duration_s": surge_duration,
                "surge_count": surge_count,
            }
            source = iter(_generator(kind, seed, first, rate, options))
        try:
            for index, item in enumerate(itertools.islice(source, count)):
                now = time.monotonic()
                if duration is not None and now - started >= duration:
                    break
                _pace(started, index, rate)
                if isinstance(item, Generated):
                    producer.send_record(kind.value, item.record, target)
                    if truth is not None and item.truth is not None:
                        truth.write(json.dumps(item.truth) + "\n")
                else:
                    number, line = item
                    result = decoder.decode(
                        line, topic=target, model=INPUT_MODELS[kind.value], origin=f"{file}:{number}", stage="produce"
                    )
                    if isinstance(result, DeadLetter):
                        invalid += 1
                        progress.console.print(f"[yellow]{file}:{number}[/]: {result.error_type}: {result.reason}")
                        if dead_letter:
                            producer.send_dead_letter(result)
                        else:
                            unsent += 1
                        continue
                    producer.send_raw(target, line, _event_key(result))
                if now - last_update > 0.1:
                    last_update = now
                    done = index + 1 if count is not None else now - started
                    stats = producer.stats
                    label = f"{kind.value} -> {target}: sent {stats.sent:,} failed {stats.failed:,}"
                    progress.update(task, completed=done, description=label)
        except KeyboardInterrupt:
            progress.console.print("interrupted; flushing what was queued")
        remaining = producer.flush(30)
        stats = producer.stats
        label = f"{kind.value} -> {target}: sent {stats.sent:,} failed {stats.failed:,}"
        progress.update(task, completed=total, description=label)
    _summary(producer.stats, remaining, invalid, unsent, dead_letter)
    if producer.stats.failed or remaining or unsent:
        raise typer.Exit(1)


def _summary(stats: Any, remaining: int, invalid: int, unsent: int, dead_letter: bool) -> None:
    """The closing line: sent, failed, rate; invalid lines and delivery errors when there were any."""
    console.print(
        f"[bold]sent[/] {stats.sent:,}  [bold]failed[/] {stats.failed + remaining:,}  "
        f"[bold]rate[/] {stats.rate:,.1f}/s over {stats.elapsed_s:.1f} s"
    )
    if invalid:
        where = "sent to the deadletter topic" if dead_letter else "not sent (use --dead-letter to keep them)"
        console.print(f"[yellow]{invalid:,} invalid line(s)[/] {where}; {unsent:,} unsent")
    for error, times in stats.errors.most_common(5):
        console.print(f"[red]{times:,} x[/] {error}")


def generate(
    kind: Kind = typer.Argument(..., help="news | transactions | clicks | catalog"),
    count: int = typer.Option(1000, min=1, help="number of events"),
    seed: int = typer.Option(0, help="generator seed"),
    out: Path = typer.Option(Path("-"), help="JSONL output ('-' = stdout)"),
    truth_out: Path | None = typer.Option(None, help="write the ground truth here (JSONL)"),
    start: datetime | None = typer.Option(None, help="event time of the first event (default: ends about now)"),
    rate: float = typer.Option(0.0, help="simulated events per second (0 = the kind's default)"),
    fraud_rate: float | None = typer.Option(None, help="transactions: share of fraudulent events"),
    surge_ticker: str | None = typer.Option(None, help="news: inject a negative surge about this ticker"),
) -> None:
    """Write generated events to a JSONL file (for --file replays, training data), reporting events/s."""
    sim_rate = rate or DEFAULT_RATES[kind.value]
    first = start or utc_now() - timedelta(seconds=count / sim_rate)
    generator = _generator(kind, seed, first, rate, {"fraud_rate": fraud_rate, "surge_ticker": surge_ticker})
    with ExitStack() as stack:
        sink = sys.stdout if str(out) == "-" else stack.enter_context(out.open("w"))
        truth = stack.enter_context(truth_out.open("w")) if truth_out else None
        started = time.perf_counter()
        for item in itertools.islice(generator, count):
            sink.write(json.dumps(item.record, separators=(",", ":")) + "\n")
            if truth is not None and item.truth is not None:
                truth.write(json.dumps(item.truth) + "\n")
        elapsed = time.perf_counter() - started
    console.print(f"generated {count:,} {kind.value} events in {elapsed:.2f} s ({count / elapsed:,.0f} events/s)")


def register(app: typer.Typer) -> None:
    """Add `produce` and `generate` to the root app."""
    app.command("produce")(produce)
    app.command("generate")(generate)
