"""The latency histogram of every service app: labelled by route template and status."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, HTTPException

from diaspora_service.app import HTTP_LATENCY, create_app


def _count(method: str, route: str, status: str) -> float:
    for metric in HTTP_LATENCY.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels == {
                "method": method,
                "route": route,
                "status": status,
            }:
                return sample.value
    return 0.0


async def test_requests_are_counted_by_route_template_and_status() -> None:
    router = APIRouter()

    @router.get("/widgets/{widget_id}")
    async def read(widget_id: int) -> dict[str, int]:
        if widget_id == 0:
            raise HTTPException(404, "no such widget")
        return {"id": widget_id}

    app = create_app(title="t", version="1", description="d", routers=[router])
    before_ok = _count("GET", "/widgets/{widget_id}", "200")
    before_missing = _count("GET", "/widgets/{widget_id}", "404")
    before_unmatched = _count("GET", "unmatched", "404")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        assert (await client.get("/widgets/7")).json() == {"id": 7}
        assert (await client.get("/widgets/8")).status_code == 200
        assert (await client.get("/widgets/0")).status_code == 404
        assert (await client.get("/nowhere")).status_code == 404

    # The concrete path (/widgets/7) never becomes a label: no ids in metrics.
    assert _count("GET", "/widgets/{widget_id}", "200") == before_ok + 2
    assert _count("GET", "/widgets/{widget_id}", "404") == before_missing + 1
    assert _count("GET", "unmatched", "404") == before_unmatched + 1
