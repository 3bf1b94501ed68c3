"""Verifies requests hookrelay signed with the reference Standard Webhooks library.

Input: a JSON-lines file, one request per line:
  {"secrets": ["whsec_..."], "headers": {"webhook-id": ..., ...}, "body_b64": "..."}
A request passes when the library accepts it with at least one of the endpoint's secrets
(during a rotation, each secret alone must verify: every current secret signs).
Prints "N passed, M failed" and exits non-zero on any failure.
"""
import base64
import json
import sys

from standardwebhooks.webhooks import Webhook


def main(path: str) -> int:
    passed = failed = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            req = json.loads(line)
            body = base64.b64decode(req["body_b64"])
            ok = True
            for secret in req["secrets"]:
                try:
                    Webhook(secret).verify(body, req["headers"], json_parse=False)
                except Exception as e:  # noqa: BLE001 - report every kind of rejection
                    ok = False
                    print(f"rejected {req['headers'].get('webhook-id')}: {e}", file=sys.stderr)
            if ok:
                passed += 1
            else:
                failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
