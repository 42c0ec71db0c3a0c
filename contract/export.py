"""Export the contract as JSON Schema files: ``python -m contract.export [--out DIR] [--check]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from contract.feed import FeedPage, FeedRecord
from contract.payloads import (
    EVENT_DATA_MODELS,
    AppointmentDay,
    CommandRequest,
    EventAdapter,
    Health,
    Status,
)

DEFAULT_OUT = Path(__file__).with_name("schemas")


def schemas() -> dict[str, dict]:
    out: dict[str, dict] = {
        "status.v1.json": Status.model_json_schema(),
        "health.v1.json": Health.model_json_schema(),
        "event.v1.json": EventAdapter.json_schema(),  # oneOf per type, discriminated by "type"
        "command.v1.json": CommandRequest.model_json_schema(),
        "appointments.v1.json": AppointmentDay.model_json_schema(),
    }
    for event_type, model in EVENT_DATA_MODELS.items():
        out[f"event-data/{event_type.value}.v1.json"] = model.model_json_schema()
    out["feed-record.v1.json"] = FeedRecord.model_json_schema()  # between gateways (upward feed)
    out["feed-page.v1.json"] = FeedPage.model_json_schema()
    for name, schema in out.items():
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"motcua/v1/{name}"
    return out


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="fail if the files on disk are stale")
    args = ap.parse_args(argv)
    stale = []
    for name, schema in schemas().items():
        path = args.out / name
        text = render(schema)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if stale:
        print("stale JSON Schema files (run `make schema`):\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    if not args.check:
        print(f"wrote {len(schemas())} schema files to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
