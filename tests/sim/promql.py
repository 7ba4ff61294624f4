"""A tiny histogram_quantile over two scrapes, parsed with prometheus_client's own parser."""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families


def buckets(text: str, family: str, match: dict[str, str]) -> dict[float, float]:
    """Cumulative bucket counts {le: count} of one histogram series."""
    out: dict[float, float] = {}
    for metric in text_string_to_metric_families(text):
        if metric.name != family:
            continue
        for sample in metric.samples:
            if not sample.name.endswith("_bucket"):
                continue
            labels = dict(sample.labels)
            le = labels.pop("le")
            if labels == match:
                out[float(le)] = sample.value
    return out


def quantile_from_delta(
    before: str, after: str, family: str, match: dict[str, str], q: float
) -> float:
    """Prometheus histogram_quantile(q, increase over the two scrapes), linear in a bucket."""
    start, end = buckets(before, family, match), buckets(after, family, match)
    bounds = sorted(end)
    counts = [end[b] - start.get(b, 0.0) for b in bounds]
    total = counts[-1]
    if total <= 0:
        return math.nan
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return previous_bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (
                count - previous_count
            )
        previous_bound, previous_count = bound, count
    return math.nan
