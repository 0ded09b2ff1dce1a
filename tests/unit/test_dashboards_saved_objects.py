"""The shipped NDJSON matches the panel definitions, and every reference and field name resolves."""

from __future__ import annotations

import json

from sinks.templates import MAPPINGS
from streams.tools.dashboards import DASHBOARDS, DATA_VIEWS, PANELS, Panel
from streams.tools.dashboards_saved_objects import NDJSON_FILE, render_ndjson, saved_objects


def _mapped(kind: str, field: str) -> bool:
    """Whether `field` (dotted) is a mapped field of the index kind in sinks/templates.py."""
    properties = MAPPINGS[kind]
    *parents, leaf = field.split(".")
    for parent in parents:
        properties = properties[parent]["properties"]
    return leaf in properties and "properties" not in properties[leaf]


def test_shipped_file_is_the_generated_one() -> None:
    assert NDJSON_FILE.read_text() == render_ndjson(), "run `lepton dashboards export` and commit the file"


def test_every_reference_resolves_and_ids_are_unique() -> None:
    objects = saved_objects()
    keys = [(obj["type"], obj["id"]) for obj in objects]
    assert len(keys) == len(set(keys))
    for obj in objects:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in keys, f"{obj['id']} references a missing {ref}"
    panels_on_dashboards = {panel.id for dashboard in DASHBOARDS for panel in dashboard.panels}
    assert panels_on_dashboards == {panel.id for panel in PANELS}


def test_data_views_cover_the_pipeline_indices() -> None:
    titles = {obj["attributes"]["title"] for obj in saved_objects() if obj["type"] == "index-pattern"}
    assert titles == {"lepton-news-*", "lepton-transactions-*", "lepton-recommendations", "lepton-alerts-*"}
    for view in DATA_VIEWS:
        assert MAPPINGS[view.kind][view.time_field]["type"] == "date"


def _fields(panel: Panel) -> set[str]:
    fields = {m.field for m in panel.metrics if m.field} | {b.field for b in panel.buckets}
    if panel.filter:
        fields |= set(next(iter(panel.filter.values())))
    return fields


def test_panels_use_mapped_fields_and_agree_with_their_visualization() -> None:
    visualizations = {obj["id"]: obj for obj in saved_objects() if obj["type"] == "visualization"}
    for panel in PANELS:
        for field in _fields(panel):
            kind = panel.data_view.kind
            assert _mapped(kind, field), f"{panel.id}: {field} is not in the {kind} mapping"
        vis = visualizations[panel.id]
        state = json.loads(vis["attributes"]["visState"])
        assert state["type"] == panel.vis
        assert [(a["id"], a["type"], a["params"].get("field")) for a in state["aggs"]] == \
            [(m.id, m.type, m.field) for m in panel.metrics] + [(b.id, b.type, b.field) for b in panel.buckets]
        search = json.loads(vis["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        assert search["indexRefName"] in {ref["name"] for ref in vis["references"]}
        assert [f["query"] for f in search["filter"]] == ([panel.filter] if panel.filter else [])


def test_query_nests_buckets_in_order_with_metrics_innermost() -> None:
    from streams.tools.dashboards import SENTIMENT_BY_TICKER

    body = SENTIMENT_BY_TICKER.query("1d")
    time = body["aggs"]["2"]
    assert time["date_histogram"] == {"field": "event_time", "fixed_interval": "1d", "min_doc_count": 1}
    assert time["aggs"]["3"]["terms"]["field"] == "tickers"
    assert time["aggs"]["3"]["aggs"] == {"1": {"avg": {"field": "score"}}}
