"""Signed, atomic, self-rolling-back updates on the kiosk (A/B release directories).

Entry point for the kiosk's command dispatcher (``apply_update`` command; import lazily)::

    from device.updates import handle_apply_update

    data = handle_apply_update(
        args,                      # CommandRequest.args: {"url": str, "sha256": str (hex of bundle.tar),
                                   #  "bundle_id": str, "version": str}
        data_dir=Path(...),        # kiosk data dir; releases live in data_dir/releases/{A,B},
                                   # the active one is the symlink data_dir/current
        trusted_keys=[pub32, ...], # raw 32-byte Ed25519 public keys of the operator's offline key(s)
        health_check=lambda: ...,  # after the switch: True / (ok, reason) when healthy on the new release
        fetch=None,                # optional callable url -> bytes (default: urllib GET)
        office_code=None,          # optional: refuse bundles not targeted at this office
        cmd_id=None,               # optional: copied into the result (else args.get("cmd_id"))
        precheck=None,             # optional: staged_release_dir -> refusal message or None, run
                                   # before `current` is switched (the kiosk validates the config overlay)
    )
    # data is the ``data`` dict of an ``update.result`` event (contract.payloads.UpdateResult):
    # {"bundle_id", "version", "outcome": "applied"|"refused"|"rolled_back", "message", "cmd_id"}
    # Publish it as an Event(type=EventType.UPDATE_RESULT, data=data). It never raises for a bad
    # bundle: every failure is an outcome with a message.

Kiosk config: ``[updates] trusted_keys = ["<64 hex>", ...]`` (raw Ed25519 public keys, printed by
``motcua-provision update keygen``), validated with the rest of the kiosk config
(device/config_sections.py ``UpdatesConfig``).

Call :func:`recover_interrupted` once at kiosk start: if the kiosk died while a new release was on
probation, it swaps back and returns ``update.result`` data (outcome ``rolled_back``) to publish.

Read the active release's files under ``data_dir / "current"`` (``release.json`` there names the
version and bundle id).
"""

from __future__ import annotations

from device.updates.apply import active_release, handle_apply_update, recover_interrupted, release_dir

__all__ = ["active_release", "handle_apply_update", "recover_interrupted", "release_dir"]
