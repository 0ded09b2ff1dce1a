"""Render the dashboards of streams/tools/dashboards.py as saved objects (NDJSON) for Kibana 8.x and OpenSearch
Dashboards.

Both import the Kibana 7.10 saved-object format (OpenSearch Dashboards is its fork; Kibana 8 migrates it on
import), so one file serves both: index patterns, legacy aggregation-based visualizations (visState +
searchSourceJSON, data views by reference) and dashboards. `lepton dashboards export` writes the file; a unit
test keeps the checked-in file equal to this output.
"""

from __future__ import annotations

import json
from typing import Any

from streams.core.settings import REPO_ROOT
from streams.tools.dashboards import DASHBOARDS, DATA_VIEWS, PANELS, Bucket, Dashboard, DataView, Metric, Panel

NDJSON_FILE = REPO_ROOT / "infra" / "kibana" / "lepton.ndjson"
# The oldest migration levels that describe these objects: the importer runs every newer migration.
MIGRATION = {"index-pattern": "7.6.0", "visualization": "7.9.3", "dashboard": "7.9.3"}
INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"
XY = ("line", "area", "histogram")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def data_view_object(view: DataView, prefix: str) -> dict[str, Any]:
    """An index pattern; fields are left out so both products read them from the mapping."""
    return {"id": view.id(prefix), "type": "index-pattern",
            "migrationVersion": {"index-pattern": MIGRATION["index-pattern"]},
            "attributes": {"title": view.pattern(prefix), "timeFieldName": view.time_field}, "references": []}


def _metric_agg(metric: Metric) -> dict[str, Any]:
    params = {"customLabel": metric.label} if metric.label else {}
    if metric.field:
        params["field"] = metric.field
    return {"id": metric.id, "enabled": True, "type": metric.type, "schema": "metric", "params": params}


def _bucket_agg(panel: Panel, bucket: Bucket) -> dict[str, Any]:
    """A bucket agg; terms ordered by count without a count metric carry a count order agg."""
    params: dict[str, Any] = {"field": bucket.field}
    if bucket.label:
        params["customLabel"] = bucket.label
    if bucket.type == "date_histogram":
        params |= {"interval": "auto", "min_doc_count": 1, "extended_bounds": {}, "useNormalizedEsInterval": True,
                   "drop_partials": False, "scaleMetricValues": False}
    elif bucket.type == "histogram":
        params |= {"interval": bucket.interval, "min_doc_count": True, "has_extended_bounds": bool(bucket.bounds),
                   "extended_bounds": {"min": bucket.bounds[0], "max": bucket.bounds[1]} if bucket.bounds else {}}
    else:
        order_by = bucket.order_by
        if order_by == "_count":
            count = next((m for m in panel.metrics if m.type == "count"), None)
            if count is None:
                order_by = "custom"
                params["orderAgg"] = {"id": f"{bucket.id}-orderAgg", "enabled": True, "type": "count",
                                      "schema": "orderAgg", "params": {}}
            else:
                order_by = count.id
        params |= {"size": bucket.size, "order": "desc", "orderBy": order_by, "otherBucket": False,
                   "otherBucketLabel": "Other", "missingBucket": False, "missingBucketLabel": "Missing"}
    return {"id": bucket.id, "enabled": True, "type": bucket.type, "schema": bucket.schema, "params": params}


def _xy_params(panel: Panel) -> dict[str, Any]:
    first = panel.metrics[0]
    series_type = "histogram" if panel.vis == "histogram" else panel.vis
    return {
        "type": panel.vis, "grid": {"categoryLines": False}, "addTooltip": True, "addLegend": True,
        "legendPosition": "right", "times": [], "addTimeMarker": False, "labels": {"show": False},
        "thresholdLine": {"show": False, "value": 10, "width": 1, "style": "full", "color": "#E7664C"},
        "categoryAxes": [{"id": "CategoryAxis-1", "type": "category", "position": "bottom", "show": True,
                          "style": {}, "scale": {"type": "linear"}, "title": {},
                          "labels": {"show": True, "filter": True, "truncate": 100}}],
        "valueAxes": [{"id": "ValueAxis-1", "name": "LeftAxis-1", "type": "value", "position": "left", "show": True,
                       "style": {}, "scale": {"type": "linear", "mode": "percentage" if panel.percentage else "normal"},
                       "labels": {"show": True, "rotate": 0, "filter": False, "truncate": 100},
                       "title": {"text": first.label or first.type}}],
        "seriesParams": [{"show": True, "type": series_type, "mode": "stacked" if panel.vis != "line" else "normal",
                          "data": {"label": first.label or first.type, "id": first.id}, "valueAxis": "ValueAxis-1",
                          "drawLinesBetweenPoints": True, "lineWidth": 2, "showCircles": True,
                          "interpolate": "linear"}],
    }


def _vis_params(panel: Panel) -> dict[str, Any]:
    if panel.vis in XY:
        return _xy_params(panel)
    if panel.vis == "pie":
        return {"type": "pie", "addTooltip": True, "addLegend": True, "legendPosition": "right", "isDonut": True,
                "labels": {"show": True, "values": True, "last_level": True, "truncate": 100}}
    if panel.vis == "table":
        return {"perPage": 10, "showPartialRows": False, "showMetricsAtAllLevels": False, "showTotal": False,
                "totalFunc": "sum", "percentageCol": ""}
    return {"addTooltip": True, "addLegend": False, "type": "metric",
            "metric": {"percentageMode": False, "useRanges": False, "colorSchema": "Green to Red",
                       "metricColorMode": "None", "colorsRange": [{"from": 0, "to": 10000}], "labels": {"show": True},
                       "invertColors": False,
                       "style": {"bgFill": "#000", "bgColor": False, "labelColor": False, "subText": "",
                                 "fontSize": 60}}}


def visualization_object(panel: Panel, prefix: str) -> dict[str, Any]:
    """A legacy aggregation-based visualization over the panel's data view (by reference)."""
    aggs = [_metric_agg(m) for m in panel.metrics] + [_bucket_agg(panel, b) for b in panel.buckets]
    references = [{"name": INDEX_REF, "type": "index-pattern", "id": panel.data_view.id(prefix)}]
    search: dict[str, Any] = {"query": {"query": "", "language": "kuery"}, "filter": [], "indexRefName": INDEX_REF}
    if panel.filter:
        ref = "kibanaSavedObjectMeta.searchSourceJSON.filter[0].meta.index"
        search["filter"] = [{"$state": {"store": "appState"}, "query": panel.filter,
                             "meta": {"alias": panel.filter_label, "disabled": False, "negate": False,
                                      "type": "custom", "key": "query", "value": _dumps(panel.filter),
                                      "indexRefName": ref}}]
        references.append({"name": ref, "type": "index-pattern", "id": panel.data_view.id(prefix)})
    vis_state = {"title": panel.title, "type": panel.vis, "aggs": aggs, "params": _vis_params(panel)}
    return {"id": panel.id, "type": "visualization",
            "migrationVersion": {"visualization": MIGRATION["visualization"]},
            "attributes": {"title": panel.title, "description": panel.description, "version": 1,
                           "visState": _dumps(vis_state), "uiStateJSON": "{}",
                           "kibanaSavedObjectMeta": {"searchSourceJSON": _dumps(search)}},
            "references": references}


def dashboard_object(dashboard: Dashboard) -> dict[str, Any]:
    """A dashboard with its panels two per row (24 of 48 grid columns each, 15 rows high)."""
    panels = [{"version": "7.9.3", "panelIndex": str(i + 1), "embeddableConfig": {}, "panelRefName": f"panel_{i}",
               "gridData": {"x": 24 * (i % 2), "y": 15 * (i // 2), "w": 24, "h": 15, "i": str(i + 1)}}
              for i in range(len(dashboard.panels))]
    return {"id": dashboard.id, "type": "dashboard", "migrationVersion": {"dashboard": MIGRATION["dashboard"]},
            "attributes": {"title": dashboard.title, "description": dashboard.description, "version": 1,
                           "panelsJSON": _dumps(panels),
                           "optionsJSON": _dumps({"useMargins": True, "hidePanelTitles": False}),
                           "timeRestore": True, "timeFrom": dashboard.time_from, "timeTo": "now",
                           "refreshInterval": {"pause": False, "value": 30000},
                           "kibanaSavedObjectMeta": {"searchSourceJSON": _dumps(
                               {"query": {"query": "", "language": "kuery"}, "filter": []})}},
            "references": [{"name": f"panel_{i}", "type": "visualization", "id": panel.id}
                           for i, panel in enumerate(dashboard.panels)]}


def saved_objects(prefix: str = "lepton") -> list[dict[str, Any]]:
    """Every saved object, referenced ones first: data views, visualizations, dashboards."""
    return ([data_view_object(view, prefix) for view in DATA_VIEWS]
            + [visualization_object(panel, prefix) for panel in PANELS]
            + [dashboard_object(dashboard) for dashboard in DASHBOARDS])


def render_ndjson(prefix: str = "lepton") -> str:
    """One JSON object per line, stable key order, trailing newline (diff-friendly)."""
    return "".join(_dumps(obj) + "\n" for obj in saved_objects(prefix))
