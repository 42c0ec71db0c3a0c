"""Signed, atomic, self-rolling-back updates on the kiosk (A/B release directories).

Entry point for the kiosk's command dispatcher (``apply_update`` command; import lazily)::

    from device.updates import handle_apply_update

    data = handle_apply_update(
        args,                      # CommandRequest.args: {"url": str, "sha256": str (hex of bundle.tar),
                                   #  "bundle_id": str, "version": str}
        data_dir=Path(...),        # kiosk data dir; releases live in data_dir/releases/{A,B},
                                   # the active one is the symlink data_dir/current
        trusted_keys=[pub32, ...], # raw 32-byte Ed25519 public keys of the operator's offline key(s)
        health_check=lambda: ...,  # True when the kiosk comes up healthy on data_dir/current
        fetch=None,                # optional callable url -> bytes (default: httpx GET)
        office_code=None,          # optional: refuse bundles not targeted at this office
        cmd_id=None,               # optional: copied into the result (else args.get("cmd_id"))
    )
    # data is the ``data`` dict of an ``update.result`` event (contract.payloads.UpdateResult):
    # {"bundle_id", "version", "outcome": "applied"|"refused"|"rolled_back", "message", "cmd_id"}
    # Publish it as an Event(type=EventType.UPDATE_RESULT, data=data). It never raises for a bad
    # bundle: every failure is an outcome with a message.

Read the active release's files under ``data_dir / "current"`` (``release.json`` there names the
version and bundle id).
"""

from __future__ import annotations

from device.updates.apply import handle_apply_update

__all__ = ["handle_apply_update"]
