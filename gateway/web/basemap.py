"""Build the offline base layer (``static/basemap/region.json`` (GeoJSON)) from world-atlas TopoJSON.

The map has no tiles (offices may have no internet), so it draws country outlines from Natural
Earth data as redistributed by the npm package ``world-atlas`` (ISC; Natural Earth is public
domain). Rebuild, when the data or the clip box changes, with::

    cd /tmp && npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
    .venv/bin/python -m gateway.web.basemap /tmp/package/countries-10m.json

Countries are clipped to ``CLIP`` (mainland Vietnam and its neighbours around it) and rounded to
4 decimals (~11 m), which keeps the file small. It is a context layer, not an official boundary map;
the former Tam Đường district's box is added as a labelled context rectangle.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "static" / "basemap" / "region.json"
CLIP = (99.5, 8.0, 110.0, 24.0)  # lon_min, lat_min, lon_max, lat_max
COUNTRIES = {"Vietnam": "Việt Nam", "Laos": "Lào", "China": "Trung Quốc", "Cambodia": "Campuchia",
             "Thailand": "Thái Lan", "Myanmar": "Myanmar"}
TAM_DUONG_BOX = (103.416, 22.168, 103.782, 22.492)  # DOMAIN-NOTES.md

Point = tuple[float, float]


def decode_arcs(topology: dict[str, Any]) -> list[list[Point]]:
    """Absolute lon/lat of every arc (delta-decoded, de-quantised)."""
    transform = topology.get("transform")
    arcs: list[list[Point]] = []
    for arc in topology["arcs"]:
        x = y = 0.0
        points: list[Point] = []
        for p in arc:
            if transform:
                x += p[0]
                y += p[1]
                sx, sy = transform["scale"]
                tx, ty = transform["translate"]
                points.append((x * sx + tx, y * sy + ty))
            else:
                points.append((float(p[0]), float(p[1])))
        arcs.append(points)
    return arcs


def ring(indices: list[int], arcs: list[list[Point]]) -> list[Point]:
    out: list[Point] = []
    for i in indices:
        pts = arcs[i] if i >= 0 else list(reversed(arcs[~i]))
        out.extend(pts if not out else pts[1:])
    return out


def clip_ring(points: list[Point], box: tuple[float, float, float, float]) -> list[Point]:
    """Sutherland-Hodgman against an axis-aligned box (the box is convex, so this is exact)."""
    x0, y0, x1, y1 = box
    edges = [
        (lambda p: p[0] >= x0, lambda a, b: _at_x(a, b, x0)),
        (lambda p: p[0] <= x1, lambda a, b: _at_x(a, b, x1)),
        (lambda p: p[1] >= y0, lambda a, b: _at_y(a, b, y0)),
        (lambda p: p[1] <= y1, lambda a, b: _at_y(a, b, y1)),
    ]
    for inside, cross in edges:
        if not points:
            break
        result: list[Point] = []
        prev = points[-1]
        for cur in points:
            if inside(cur):
                if not inside(prev):
                    result.append(cross(prev, cur))
                result.append(cur)
            elif inside(prev):
                result.append(cross(prev, cur))
            prev = cur
        points = result
    return points


def _at_x(a: Point, b: Point, x: float) -> Point:
    t = (x - a[0]) / (b[0] - a[0])
    return (x, a[1] + t * (b[1] - a[1]))


def _at_y(a: Point, b: Point, y: float) -> Point:
    t = (y - a[1]) / (b[1] - a[1])
    return (a[0] + t * (b[0] - a[0]), y)


def _rounded(points: list[Point]) -> list[list[float]]:
    out: list[list[float]] = []
    for x, y in points:
        p = [round(x, 4), round(y, 4)]
        if not out or out[-1] != p:
            out.append(p)
    if out and out[0] != out[-1]:
        out.append(out[0])
    return out


def build(topology: dict[str, Any]) -> dict[str, Any]:
    arcs = decode_arcs(topology)
    features: list[dict[str, Any]] = []
    for geom in topology["objects"]["countries"]["geometries"]:
        name = geom.get("properties", {}).get("name")
        if name not in COUNTRIES:
            continue
        polygons = [geom["arcs"]] if geom["type"] == "Polygon" else geom["arcs"]
        out_polys = []
        for poly in polygons:
            rings = [_rounded(clip_ring(ring(r, arcs), CLIP)) for r in poly]
            if rings and len(rings[0]) >= 4:
                out_polys.append([r for r in rings if len(r) >= 4])
        if out_polys:
            features.append({
                "type": "Feature",
                "properties": {"kind": "country", "name": COUNTRIES[name], "name_en": name,
                               "home": name == "Vietnam"},
                "geometry": {"type": "MultiPolygon", "coordinates": out_polys},
            })
    x0, y0, x1, y1 = TAM_DUONG_BOX
    features.append({
        "type": "Feature",
        "properties": {"kind": "context", "name": "Huyện Tam Đường cũ (trước 1/7/2025)",
                       "name_en": "Former Tam Đường district (bounding box)"},
        "geometry": {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]},
    })
    return {"type": "FeatureCollection",
            "properties": {"source": "Natural Earth 1:10m via world-atlas 2.0.2 (ISC)", "clip": CLIP},
            "features": features}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topojson", type=Path, help="world-atlas countries-10m.json")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    collection = build(json.loads(args.topojson.read_text()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(collection, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {len(collection['features'])} features)")


if __name__ == "__main__":
    main()
