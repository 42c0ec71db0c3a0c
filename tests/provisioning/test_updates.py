"""Signed updates on the kiosk side: verify, A/B apply, health check, automatic rollback."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from contract.bundle import canonical_json
from contract.payloads import UpdateResult
from device.config import ConfigError, parse_config
from device.updates import handle_apply_update, recover_interrupted
from device.updates.apply import active_slot
from provisioning.signing import generate_key, load_key, pack, public_raw, sign_bundle
from tests.device.helpers import example_table

CMD = "0b7c3a52-1d7e-4c47-9a53-2f4a8f1f0c11"


@pytest.fixture
def key(tmp_path: Path):
    generate_key(tmp_path / "offline.key")
    return load_key(tmp_path / "offline.key")


def make_src(root: Path, tag: str, extra: dict[str, bytes] | None = None) -> Path:
    files = {"config/kiosk.toml": f'[rating]\nscale = 3 # {tag}\n'.encode(),
             "models/expr.onnx": b"\x08\x07" + tag.encode() * 100, **(extra or {})}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def apply(data: bytes, data_dir: Path, keys: list[bytes], healthy=lambda: True, **kw) -> dict:
    args = {"url": "http://gw/api/v1/updates/x/bundle.tar", "sha256": hashlib.sha256(data).hexdigest(),
            "cmd_id": CMD}
    out = handle_apply_update(args, data_dir=data_dir, trusted_keys=keys, health_check=healthy,
                              fetch=lambda url: data, **kw)
    UpdateResult.model_validate(out)  # always a valid update.result data dict
    return out


def tar_members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return {m.name: t.extractfile(m).read() for m in t}


def test_good_bundle_applies_then_next_goes_to_other_slot(key, tmp_path: Path) -> None:
    pub = public_raw(key)
    bid1, b1 = sign_bundle(key, make_src(tmp_path / "v1", "one"), "1.0.0")
    dd = tmp_path / "data"
    r = apply(b1, dd, [pub])
    assert r["outcome"] == "applied" and r["bundle_id"] == bid1
    assert r["version"] == "1.0.0" and r["cmd_id"] == CMD
    assert active_slot(dd) == "A"
    assert b"# one" in (dd / "current/config/kiosk.toml").read_bytes()

    src2 = tmp_path / "v2"
    (src2 / "config").mkdir(parents=True)
    (src2 / "config/kiosk.toml").write_bytes(b"[rating]\nscale = 5 # two\n")
    bid2, b2 = sign_bundle(key, src2, "1.1.0", offices=["03390"])
    r = apply(b2, dd, [pub], office_code="03390")
    assert r["outcome"] == "applied", r
    assert active_slot(dd) == "B"
    assert b"# two" in (dd / "current/config/kiosk.toml").read_bytes()
    assert (dd / "current/models/expr.onnx").read_bytes().endswith(b"one")  # carried over from v1
    assert json.loads((dd / "current/release.json").read_text())["bundle_id"] == bid2
    assert apply(b2, dd, [pub])["message"].startswith("already active")  # redelivered command
    assert apply(b1, dd, [pub])["outcome"] == "refused"  # downgrade
    assert active_slot(dd) == "B"


def test_tampered_signature_and_file_hash_are_refused(key, tmp_path: Path) -> None:
    pub = public_raw(key)
    _, good = sign_bundle(key, make_src(tmp_path / "v1", "one"), "1.0.0")
    m = tar_members(good)

    manifest = json.loads(m["manifest.json"])
    manifest["offices"] = ["99999"]  # any change to the signed manifest
    forged = pack(canonical_json(manifest), m["manifest.sig"], {k[6:]: v for k, v in m.items()
                                                                if k.startswith("files/")})
    files = {k[6:]: v for k, v in m.items() if k.startswith("files/")}
    files["config/kiosk.toml"] = b"[rating]\nscale = 5 # evil\n"
    swapped = pack(m["manifest.json"], m["manifest.sig"], files)
    other_key_dir = tmp_path / "k2"
    other_key_dir.mkdir()
    generate_key(other_key_dir / "k")
    _, foreign = sign_bundle(load_key(other_key_dir / "k"), tmp_path / "v1", "1.0.0")

    dd = tmp_path / "data"
    for data, why in ((forged, "signature"), (swapped, "sha256"), (foreign, "signature"),
                      (good[:1000], "tar")):
        r = apply(data, dd, [pub])
        assert r["outcome"] == "refused" and why in r["message"], (why, r)
        assert not (dd / "current").exists(), "a refused bundle changed the active release"
    r = handle_apply_update({"url": "x", "sha256": "0" * 64}, data_dir=dd, trusted_keys=[pub],
                            health_check=lambda: True, fetch=lambda url: good)
    assert r["outcome"] == "refused" and "does not match" in r["message"]
    r = handle_apply_update({"url": "x"}, data_dir=dd, trusted_keys=[pub], health_check=lambda: True,
                            fetch=lambda url: (_ for _ in ()).throw(OSError("network down")))
    assert r["outcome"] == "refused" and "network down" in r["message"]
    assert apply(good, dd, [pub], office_code="03390")["outcome"] == "applied"  # untargeted = all offices


def test_signed_but_unsafe_paths_are_refused(key, tmp_path: Path) -> None:
    pub = public_raw(key)
    payload = b"owned"
    manifest = {"format": 1, "version": "9.0.0", "offices": [], "key_id": "x", "created_at": "now",
                "files": [{"path": "../../etc/cron.d/x", "sha256": hashlib.sha256(payload).hexdigest(),
                           "size": 5, "kind": "config"}]}
    mb = canonical_json(manifest)
    data = pack(mb, key.sign(mb), {"../../etc/cron.d/x": payload})
    r = apply(data, tmp_path / "data", [pub])
    assert r["outcome"] == "refused" and "unsafe" in r["message"]
    assert not (tmp_path / "etc").exists()


def test_unhealthy_version_is_rolled_back(key, tmp_path: Path) -> None:
    pub = public_raw(key)
    dd = tmp_path / "data"
    _, b1 = sign_bundle(key, make_src(tmp_path / "v1", "one"), "1.0.0")
    assert apply(b1, dd, [pub])["outcome"] == "applied"
    _, b2 = sign_bundle(key, make_src(tmp_path / "v2", "two"), "1.1.0")
    seen: list[bytes] = []

    def unhealthy() -> bool:
        seen.append((dd / "current/config/kiosk.toml").read_bytes())  # the new version is live here
        return False

    r = apply(b2, dd, [pub], healthy=unhealthy)
    assert r["outcome"] == "rolled_back" and "1.0.0" in r["message"], r
    assert b"# two" in seen[0]
    assert active_slot(dd) == "A" and b"# one" in (dd / "current/config/kiosk.toml").read_bytes()

    def crashing() -> bool:
        raise RuntimeError("kiosk did not start")

    r = apply(b2, dd, [pub], healthy=crashing)
    assert r["outcome"] == "rolled_back" and "kiosk did not start" in r["message"]
    assert active_slot(dd) == "A"
    assert apply(b2, dd, [pub])["outcome"] == "applied" and active_slot(dd) == "B"


def test_power_cut_during_probation_rolls_back_at_next_start(key, tmp_path: Path) -> None:
    pub = public_raw(key)
    dd = tmp_path / "data"
    _, b1 = sign_bundle(key, make_src(tmp_path / "v1", "one"), "1.0.0")
    apply(b1, dd, [pub])
    _, b2 = sign_bundle(key, make_src(tmp_path / "v2", "two"), "1.1.0")

    class PowerCut(BaseException):
        pass

    def cut() -> bool:
        raise PowerCut

    with pytest.raises(PowerCut):
        apply(b2, dd, [pub], healthy=cut)
    assert active_slot(dd) == "B"  # the process died with the new version live and unconfirmed
    r = recover_interrupted(dd)
    assert r is not None and r["outcome"] == "rolled_back" and r["cmd_id"] == CMD
    UpdateResult.model_validate(r)
    assert active_slot(dd) == "A"
    assert recover_interrupted(dd) is None


def test_kiosk_updates_section_is_checked_with_the_config() -> None:
    data = example_table()
    data["updates"] = {"trusted_keys": ["ab" * 32]}
    assert parse_config(data).updates.raw_keys() == [bytes.fromhex("ab" * 32)]
    bad_tables = ({"trusted_keys": ["zz"]}, "trusted_keys"), ({"trusted_keys": "ab" * 32}, "trusted_keys")
    for bad, key in (*bad_tables, ({"keys": []}, "keys")):
        data["updates"] = bad
        with pytest.raises(ConfigError, match=rf"\[updates\] {key}"):
            parse_config(data)
