"""`lepton bench sentiment | fraud | recs | fuzz`: measurements against a baseline taken in the same run."""

from __future__ import annotations

import typer

from streams.cli.shared import group, print_result

JSON = typer.Option(False, "--json", help="Print one JSON object instead of a table.")
DEVICE = typer.Option("auto", "--device", help="auto, cpu or cuda.")
WORKERS = typer.Option(
    None, "--workers", help="Instead: the pipeline with each number of worker processes, e.g. 1,2,3, on the same "
    "events in one run (events/s each and the ratio to the first).")


def sentiment(
    count: int = typer.Option(2000, min=100, help="Headlines per measurement."),
    rounds: int = typer.Option(
        3, min=1, max=9, help="Rounds of (a), (b), (a) again and (c); the round with the median pipeline_vs_raw is "
        "reported."),
    warmup: int = typer.Option(
        40000, min=0, help="At most this many headlines through the pipeline before measuring, in chunks of 8,000 "
        "until the search engine's and broker's CPU per headline settles, to warm their JVMs (0: none)."),
    device: str = DEVICE,
    workers: str | None = WORKERS,
    json_output: bool = JSON,
) -> None:
    """Raw model vs batched pipeline vs unbatched pipeline, on the same headlines, in one run (or, with --workers,
    the pipeline with 1, 2, 3... worker processes)."""
    from streams.tools import bench_sentiment
    from streams.tools.bench_workers import parse_counts

    result = (bench_sentiment.run_workers(parse_counts(workers), count, rounds, warmup, device) if workers else
              bench_sentiment.run(count, rounds, warmup, device))
    print_result("lepton bench sentiment", result, json_output)


def fraud(
    count: int = typer.Option(10_000, min=500, help="Transactions on the shared topic (ceiling and pipeline)."),
    seconds: float = typer.Option(20.0, min=5, help="How long to produce at half rate for alert latency."),
    latency_rate: float | None = typer.Option(None, "--latency-rate", min=1, help="Measure alert latency at this "
                                              "many transactions/s instead of half the pipeline's rate."),
    rounds: int = typer.Option(3, min=1, max=9, help="With --workers: rounds of every count (the median is shown)."),
    device: str = DEVICE,
    workers: str | None = WORKERS,
    profile: bool = typer.Option(False, "--profile", help="Instead: py-spy samples a worker draining --count "
                                 "transactions; CPU milliseconds per transaction by thread and pipeline step."),
    steps: bool = typer.Option(False, "--steps", help="Instead: the two stages' own steps on --count transactions "
                               "in one process (no broker, no Faust); microseconds per payment by step, in batches "
                               "of 512 and of 25."),
    json_output: bool = JSON,
) -> None:
    """Fraud pipeline vs a plain consume->produce ceiling on the same topic, the search engine alone on the same
    documents, and alert latency at half rate (or, with --workers, the pipeline with 1, 2, 3... worker processes;
    with --profile, where the worker's CPU goes; with --steps, the stages' own work without Kafka and Faust)."""
    from streams.tools import bench_fraud, profile_fraud, stage_costs
    from streams.tools.bench_workers import parse_counts

    if steps:
        result = stage_costs.run(count)
    elif profile:
        result = profile_fraud.run(count, device)
    elif workers:
        result = bench_fraud.run_workers(parse_counts(workers), count, rounds, device)
    else:
        result = bench_fraud.run(count, seconds, device, latency_rate)
    print_result("lepton bench fraud", result, json_output)


def recs(
    seed: int = typer.Option(7, "--seed", help="Seed of the generated catalog and sessions."),
    items: int = typer.Option(500, "--items", min=20, help="Catalog size."),
    users: int = typer.Option(1000, "--users", min=1, help="Simulated users."),
    events: int = typer.Option(20_000, "--events", min=100, help="Clicks replayed to build the users' interests."),
    device: str = DEVICE,
    json_output: bool = JSON,
) -> None:
    """Items embedded and users recommended per second, batched vs one at a time, in one run (in-process)."""
    from streams.tools import bench_recs

    print_result("lepton bench recs", bench_recs.run(seed, items, users, events, device), json_output)


def fuzz(
    cases: int = typer.Option(100_000, "--cases", min=1, help="How many generated messages to decode."),
    seed_value: int = typer.Option(0, "--seed", help="Hypothesis seed (the same seed replays the same cases)."),
    json_output: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
) -> None:
    """Fuzz the decoding boundary (Decoder.decode must never raise); exits 1 on any unhandled exception."""
    from streams.tools.bench_fuzz import run_fuzz

    result = run_fuzz(cases, seed_value)
    print_result("lepton bench fuzz", result, json_output)
    if result["unhandled_exceptions"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the `bench` group to the root app."""
    bench = group(app, "bench", "Measure throughput against a baseline taken in the same run.")
    for command in (sentiment, fraud, recs, fuzz):
        bench.command(command.__name__)(command)
