"""Per-counter tokens of a shared line's LAN API, derived from the office's line secret.

The entrance kiosk holds the office's secret (``[line] token`` with ``role = "entrance"``); each
counter kiosk holds only its own token, ``c<counter>.<hmac>``, where the HMAC-SHA256 of the secret
over ``motcua-line-counter:<counter>`` is cut to 32 hex digits. The entrance checks a presented token
by recomputing it, and answers a counter's request only for the counter its token names (403
otherwise). Why: with one shared token, counter 5 could act as counter 3 (rate counter 3's finished
visit before the citizen did, or mark its citizen absent), moving a colleague's figures; now a
counter's kiosk can speak only for itself, and the office secret never leaves the entrance.

    python -m device.line_tokens 3 5 < secret    # prints the tokens of counters 3 and 5
"""

from __future__ import annotations

import hashlib
import hmac
import re
import sys

from contract.payloads import MAX_COUNTER

TOKEN_PATTERN = r"^c[1-9][0-9]{0,3}\.[0-9a-f]{32}$"
_TOKEN = re.compile(TOKEN_PATTERN)


def counter_token(secret: str, counter: int) -> str:
    """The token of ``counter`` for the office whose line secret is ``secret``."""
    if not 1 <= counter <= MAX_COUNTER:
        raise ValueError(f"counter {counter}: expected 1..{MAX_COUNTER}")
    mac = hmac.new(secret.encode(), f"motcua-line-counter:{counter}".encode(), hashlib.sha256)
    return f"c{counter}.{mac.hexdigest()[:32]}"


def counter_of(secret: str, presented: str) -> int | None:
    """The counter a presented token speaks for, or None when it is not a valid token of this office
    (compared in constant time)."""
    if not _TOKEN.match(presented):
        return None
    counter = int(presented[1:presented.index(".")])
    if counter > MAX_COUNTER:
        return None
    return counter if hmac.compare_digest(presented, counter_token(secret, counter)) else None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or not all(a.isdigit() for a in args):
        print("usage: python -m device.line_tokens COUNTER [COUNTER ...] < secret", file=sys.stderr)
        return 2
    secret = sys.stdin.readline().strip()
    if len(secret) < 16:
        print("error: the office's line secret (at least 16 characters) on standard input", file=sys.stderr)
        return 2
    for a in args:
        print(f"{a}\t{counter_token(secret, int(a))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
