"""``motcua-provision``: operator CA, broker config, device provisioning, SD card flashing, signed updates.

Every command ends with one verdict line, Vietnamese then English, and exits 0 on success, 1 on
failure (2 for usage errors).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

OK = "✔ HOÀN TẤT / DONE"
WARN = "⚠ HOÀN TẤT, CÒN VIỆC / DONE WITH A PENDING STEP"
FAIL = "✘ THẤT BẠI / FAILED"
TOKEN_ENV = "MOTCUA_PROVISION_TOKEN"


def _ca_dir(a: argparse.Namespace) -> Path:
    return Path(a.ca_dir or os.environ.get("MOTCUA_CA_DIR") or "motcua-ca")


def cmd_ca(a: argparse.Namespace) -> int:
    from provisioning.ca import GATEWAY_CN, _write, init_ca, open_ca

    d = _ca_dir(a)
    if a.ca_cmd == "init":
        ca = init_ca(d, crl_url=a.crl_url)
        print(f"CA: {ca.path / 'ca.crt'} (khoá riêng / private key {ca.path / 'ca.key'}, 0600)")
        print(f"{OK}: đã tạo CA / operator CA created in {d}")
        return 0
    ca = open_ca(d)
    if a.ca_cmd == "revoke":
        serial = ca.revoke(a.device, a.reason)
        print(f"thu hồi / revoked {a.device} (serial {serial}); CRL: {ca.path / 'crl.pem'}")
        print("Cập nhật broker / update the broker: motcua-provision mosquitto-conf ... && restart mosquitto")
        print(f"{OK}: {a.device} đã bị thu hồi / revoked")
        return 0
    if a.ca_cmd == "crl":
        print(f"{OK}: CRL {ca.write_crl()}")
        return 0
    if a.ca_cmd == "list":
        reg = ca.registry()
        for dev, e in sorted(reg["devices"].items()):
            print(f"{dev:24} {e['office']:>8} quầy {e['counter']:<3} {e['status']:8} {e['serial'][:16]} "
                  f"gen {e['generation']}")
        print(f"{len(reg['devices'])} thiết bị / devices, {len(reg['revoked'])} chứng chỉ thu hồi / revoked")
        return 0
    if a.ca_cmd == "gateway-cert":
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        key, cert = ca.issue_service(a.name or GATEWAY_CN)
        _write(out / "gateway.key", key, 0o600)
        _write(out / "gateway.crt", cert, 0o644)
        _write(out / "ca.crt", ca.ca_pem(), 0o644)
        print(f"{OK}: MQTT identity {a.name or GATEWAY_CN} in {out}")
        return 0
    raise AssertionError(a.ca_cmd)


def cmd_mosquitto(a: argparse.Namespace) -> int:
    from provisioning.ca import open_ca
    from provisioning.mosquitto_conf import QueueSizing, unreadable_by, write_broker_config

    try:
        sizing = QueueSizing(kiosks=a.kiosks, events_per_kiosk_day=a.events_per_kiosk_day,
                             outage_days=a.outage_days)
    except ValueError as exc:
        print(f"{FAIL}: {exc}")
        return 2
    files = write_broker_config(open_ca(_ca_dir(a)), Path(a.out), port=a.port, bind=a.bind,
                                server_names=a.server_name or None, acl_mode=a.acl,
                                gateway_cns=tuple(a.gateway_name or ["motcua.gateway"]),
                                sizing=sizing, persistence_dir=a.persistence_dir)
    print(f"cấu hình / config: {files.conf}\nACL ({a.acl}): {files.acl}\nCRL: {files.crlfile}")
    print(f"hàng đợi / queue: max_queued_messages {sizing.max_queued_messages:,} = {a.kiosks} kiosks × "
          f"{a.events_per_kiosk_day} events/day × {a.outage_days:g} day(s); "
          f"~{sizing.heap_estimate_mb:,.0f} MB RAM when full")
    print(f"Chạy mosquitto / run mosquitto: `mosquitto -c {files.conf}` (a whole config, not an include)")
    if a.acl == "registry":
        print("Sau mỗi lần cấp/thu hồi thiết bị / after each device new or revoke: rerun mosquitto-conf "
              "and `kill -HUP <mosquitto pid>`")
    problems = unreadable_by("mosquitto", [files.conf, files.acl, files.keyfile, files.crlfile])
    if problems:
        print(f"{FAIL}: người dùng mosquitto không đọc được / the mosquitto user cannot read: "
              + "; ".join(problems))
        return 1
    print(f"{OK}: broker TLS config written")
    return 0


def cmd_device(a: argparse.Namespace) -> int:
    from provisioning.ca import open_ca
    from provisioning.device import DeviceRequest, new_device

    keys = list(a.update_key or [])
    req = DeviceRequest(office=a.office, counter=a.counter, device_id=a.device_id, wifi_ssid=a.wifi_ssid,
                        wifi_psk=a.wifi_psk, gateway=a.gateway, token=a.token or os.environ.get(TOKEN_ENV),
                        broker=a.broker, ntp=a.ntp or [], update_keys=keys, ssh_keys=a.ssh_key or [],
                        command_keys=list(a.command_key or []),
                        wheels=[Path(w) for w in a.wheel or []], office_name=a.office_name or "")
    res = new_device(open_ca(_ca_dir(a)), req, Path(a.out), say=print)
    print(f"Gói khởi động / boot bundle: {res.boot_dir}   Nhãn / label: {res.label}")
    print("Broker (ACL registry, mặc định / default): chạy lại / rerun `motcua-provision mosquitto-conf …` "
          "+ `kill -HUP <mosquitto pid>` để thiết bị này được kết nối / so this device is admitted")
    if res.registration.state == "registered":
        print(f"{OK}: {res.device_id} sẵn sàng — ghi thẻ bằng / ready — write the card with "
              f"`motcua-provision flash --image … --device /dev/sdX --bundle {a.out}`")
        return 0
    if res.registration.state == "queued":
        print(f"{WARN}: {res.device_id} sẵn sàng, đăng ký đang chờ mạng / ready, registration queued "
              f"({res.registration.detail}); khi có mạng chạy / when online run "
              "`motcua-provision register --flush`")
        return 0
    print(f"{FAIL}: gateway từ chối đăng ký / the gateway refused the registration: "
          f"{res.registration.detail}")
    return 1


def cmd_register(a: argparse.Namespace) -> int:
    from provisioning.register import flush, pending

    outbox = _ca_dir(a) / "outbox.jsonl"
    token = a.token or os.environ.get(TOKEN_ENV)
    if not a.flush:
        for e in pending(outbox):
            print(f"đang chờ / pending: {e['device_id']} {e['office_code']} quầy {e['counter']} "
                  f"→ {e.get('gateway')}")
        return 0
    if not token:
        print(f"{FAIL}: thiếu mã truy cập / no API token (--token or {TOKEN_ENV})")
        return 1
    results = flush(outbox, token, a.gateway)
    counts = {"registered": 0, "queued": 0, "rejected": 0}
    for entry, out in results:
        counts[out.state] += 1
        print(f"  {entry['device_id']:24} {out.state:10} {out.detail}")
    summary = (f"{counts['registered']} đã đăng ký / registered, {counts['queued']} còn chờ / still queued, "
               f"{counts['rejected']} bị từ chối / rejected")
    if counts["rejected"]:
        print(f"{FAIL}: {summary} (xem / see outbox.rejected.jsonl)")
        return 1
    print(f"{WARN if counts['queued'] else OK}: {summary}")
    return 0


def cmd_flash(a: argparse.Namespace) -> int:
    from provisioning.flash import flash

    def confirm(target) -> bool:
        if a.yes:
            return True
        what = target.name or target.path.name
        size = f" ({target.size / 1e9:.1f} GB)" if target.size else ""
        print(f"Sẽ XOÁ TOÀN BỘ / this will ERASE {target.path}{size}.")
        answer = input(f"Gõ '{what}' để xác nhận / type '{what}' to confirm: ").strip()
        return answer == what

    result = flash(Path(a.image), Path(a.device), Path(a.bundle) if a.bundle else None, confirm=confirm)
    print(f"{OK}: đã ghi và kiểm tra / written and verified ({result['written']:,} bytes, "
          f"sha256 {result['sha256'][:16]}…), {len(result['bundle_files'])} tệp gói / bundle files")
    return 0


def cmd_update(a: argparse.Namespace) -> int:
    from provisioning.signing import generate_key, load_key, public_raw, sign_bundle

    if a.update_cmd == "keygen":
        pub = generate_key(Path(a.out))
        print("khoá công khai / public key (kiosk [updates] trusted_keys, "
              "gateway POST /api/v1/updates/keys):")
        print(pub.hex())
        print(f"{OK}: khoá ký ngoại tuyến / offline signing key {a.out} (0600) — "
              "giữ ngoài gateway / keep it offline")
        return 0
    key = load_key(Path(a.key))
    bundle_id, data = sign_bundle(key, Path(a.src), a.version, a.office or [], Path(a.out))
    print(f"bundle {bundle_id}: {len(data):,} bytes, khoá / key {public_raw(key).hex()[:16]}…")
    print(f"{OK}: đã ký / signed {a.out} (version {a.version}, offices {', '.join(a.office or []) or 'all'})")
    return 0


def _with_ca(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--dir", "--ca-dir", dest="ca_dir",
                    help="CA folder (default $MOTCUA_CA_DIR or ./motcua-ca)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="motcua-provision", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    _ca_parsers(sub)
    _mosquitto_parser(sub)
    _device_parsers(sub)
    reg = sub.add_parser("register", help="list or upload queued registrations")
    _with_ca(reg)
    reg.add_argument("--flush", action="store_true")
    reg.add_argument("--gateway", help="override the gateway URL stored with each entry")
    reg.add_argument("--token")
    f = sub.add_parser("flash", help="write + verify an OS image, then add the first-boot bundle")
    f.add_argument("--image", required=True)
    f.add_argument("--device", required=True, help="/dev/sdX, /dev/mmcblkN or an image file")
    f.add_argument("--bundle", help="the `device new --out` folder (or its boot/ folder)")
    f.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _update_parsers(sub)
    return p


def _ca_parsers(sub: Any) -> None:
    ca = sub.add_parser("ca", help="operator certificate authority")
    ca_sub = ca.add_subparsers(dest="ca_cmd", required=True)
    i = ca_sub.add_parser("init", help="create the CA")
    _with_ca(i)
    i.add_argument("--crl-url", help="CRL distribution point put in every certificate (needed by EMQX)")
    r = ca_sub.add_parser("revoke", help="revoke a device's certificate and rewrite the CRL")
    r.add_argument("device")
    r.add_argument("--reason", default="revoked")
    _with_ca(r)
    _with_ca(ca_sub.add_parser("crl", help="re-sign the CRL (do it at least yearly)"))
    _with_ca(ca_sub.add_parser("list", help="devices and their certificates"))
    g = ca_sub.add_parser("gateway-cert", help="MQTT client identity for a gateway instance")
    g.add_argument("--out", required=True)
    g.add_argument("--name", help="CN, must contain a '.' (default motcua.gateway)")
    _with_ca(g)


def _mosquitto_parser(sub: Any) -> None:
    m = sub.add_parser("mosquitto-conf", help="broker TLS listener, CRL and ACL from the CA")
    _with_ca(m)
    m.add_argument("--out", required=True)
    m.add_argument("--port", type=int, default=8883)
    m.add_argument("--bind", default="0.0.0.0")
    m.add_argument("--server-name", action="append", help="DNS name or IP of the broker (repeat)")
    m.add_argument("--acl", choices=["registry", "pattern"], default="registry",
                   help="registry (default): each certificate bound to its office; pattern: any office")
    m.add_argument("--kiosks", type=int, default=2000, help="fleet size the broker queue is sized for")
    m.add_argument("--events-per-kiosk-day", type=int, default=500)
    m.add_argument("--outage-days", type=float, default=1.0,
                   help="gateway outage the broker must absorb without dropping events")
    m.add_argument("--persistence-dir", default="/var/lib/mosquitto")
    m.add_argument("--gateway-name", action="append", help="gateway identity CN (repeat for several)")


def _device_parsers(sub: Any) -> None:
    dev = sub.add_parser("device", help="provision kiosks")
    dev_sub = dev.add_subparsers(dest="device_cmd", required=True)
    n = dev_sub.add_parser("new", help="identity + config + first-boot bundle + label + registration")
    _with_ca(n)
    n.add_argument("--office", required=True, help="office code, e.g. 03390")
    n.add_argument("--counter", required=True, type=int)
    n.add_argument("--device-id")
    n.add_argument("--office-name", help="printed on the label")
    n.add_argument("--wifi-ssid")
    n.add_argument("--wifi-psk")
    n.add_argument("--gateway", help="gateway URL, e.g. https://gw.example:8080")
    n.add_argument("--token", help=f"gateway admin API token (or ${TOKEN_ENV})")
    n.add_argument("--broker", help="mqtts://host:8883 (default: the gateway's host, port 8883)")
    n.add_argument("--ntp", action="append", help="extra NTP server (repeat)")
    n.add_argument("--update-key", action="append", help="trusted update public key, 64 hex (repeat)")
    n.add_argument("--command-key", action="append",
                   help="gateway command public key, 64 hex (python -m gateway.commands pubkey; repeat)")
    n.add_argument("--ssh-key", action="append", help="authorised SSH public key for the kiosk user")
    n.add_argument("--wheel", action="append", help="kiosk wheel(s) to install at first boot")
    n.add_argument("--out", required=True)


def _update_parsers(sub: Any) -> None:
    u = sub.add_parser("update", help="signed update bundles")
    u_sub = u.add_subparsers(dest="update_cmd", required=True)
    k = u_sub.add_parser("keygen", help="new offline Ed25519 signing key")
    k.add_argument("--out", required=True)
    s = u_sub.add_parser("sign", help="sign a folder into bundle.tar")
    s.add_argument("--key", required=True)
    s.add_argument("--in", dest="src", required=True)
    s.add_argument("--version", required=True)
    s.add_argument("--office", action="append", help="target office (repeat; default: all)")
    s.add_argument("--out", required=True)


def main(argv: list[str] | None = None) -> int:
    from contract.bundle import BundleError
    from provisioning.ca import CAError
    from provisioning.flash import FlashError

    a = build_parser().parse_args(argv)
    handlers = {"ca": cmd_ca, "mosquitto-conf": cmd_mosquitto, "device": cmd_device, "register": cmd_register,
                "flash": cmd_flash, "update": cmd_update}
    try:
        return handlers[a.cmd](a)
    except (CAError, FlashError, BundleError, FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"{FAIL}: {exc}")
        return 1
    except KeyboardInterrupt:
        print(f"{FAIL}: đã dừng / interrupted")
        return 1


if __name__ == "__main__":
    sys.exit(main())
