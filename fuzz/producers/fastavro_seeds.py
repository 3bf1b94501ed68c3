"""Seed inputs written by fastavro, the Avro library Python producers use, for the fuzz corpus.

Writes, into fuzz/corpus/:
  event_record/ok-fastavro-*      license events, Avro single-object (v1 and v2 writers) and
                                  Confluent-framed (schema id 2 = license_event.v2)
  endpoint_record/ok-fastavro-*   an endpoint record (schema endpoint.v3), keyed by its id

fastavro has no single-object writer; the header is built from the spec (C3 01, then the
schema's CRC-64-AVRO fingerprint, little-endian) with fastavro's own fingerprint function, so
the fingerprints come from fastavro too, not from hookrelay.

Run once after a schema change and commit the files (any Python 3 with fastavro):
  python3 -m venv /tmp/fa && /tmp/fa/bin/pip install fastavro
  /tmp/fa/bin/python fuzz/producers/fastavro_seeds.py
"""

import io
import json
import pathlib
import struct

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fuzz" / "corpus"


def schema(name):
    return fastavro.parse_schema(json.loads((ROOT / "schemas" / name).read_text()))


def datum(parsed, record):
    out = io.BytesIO()
    fastavro.schemaless_writer(out, parsed, record)
    return out.getvalue()


def single_object(parsed, record):
    # fingerprint() gives the CRC-64-AVRO bytes in little-endian order, as the header has them.
    fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
    return b"\xc3\x01" + fp + datum(parsed, record)


def confluent(schema_id, parsed, record):
    return b"\x00" + struct.pack(">I", schema_id) + datum(parsed, record)


def write(target, name, data):
    path = CORPUS / target / name
    path.write_bytes(data)
    print(f"{path.relative_to(ROOT)}: {len(data)} bytes")


def main():
    v1 = schema("license_event.v1.avsc")
    v2 = schema("license_event.v2.avsc")
    base = {
        "id": "evt_fastavro01",
        "created": 1773585000123,  # 2026-03-15T14:30:00.123Z, as epoch milliseconds
        "account_id": "acc_py",
        "data": {
            "licenseKey": "TO-8F3A-22C1-9B7E-F6A8",
            "plan": "professional",
            "domain": "app.customer.com",
            "activationsUsed": 3,
            "activationLimit": 10,
            "expiresAt": 1805068800000,
            "features": ["analytics", "sso", "ümlaut"],
            "previousPlan": None,
        },
    }
    activated = dict(base, type="license.activated")
    write("event_record", "ok-fastavro-v1-license.activated", single_object(v1, activated))
    failed = dict(
        base,
        type="payment.failed",
        data=dict(base["data"], domain=None, reason="card_declined", amount=49900, currency="EUR"),
    )
    write("event_record", "ok-fastavro-v2-payment.failed", single_object(v2, failed))
    write("event_record", "ok-fastavro-confluent_v2-payment.failed", confluent(2, v2, failed))

    endpoint = schema("endpoint.v3.avsc")
    record = {
        "id": "ep_fastavro",
        "account_id": "acc_py",
        "url": "https://hooks.example.com/licenses?x=1",
        "description": None,
        "event_types": ["license.activated"],
        "secrets": [{"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "expires_at_ms": None}],
        "enabled": True,
        "disabled_reason": None,
        "disabled_at_ms": None,
        "disabled_by": None,
        "rate_limit_per_sec": 20,
        "max_concurrency": None,
        "batching": {"enabled": True, "max_events": 50, "max_bytes": None, "linger_ms": 250},
        "version": 7,
        "created_at_ms": 1773585000000,
        "updated_at_ms": None,
        "contact_email": "owner@customer.example",
    }
    write("endpoint_record", "ok-fastavro-v3", b"ep_fastavro\x00" + single_object(endpoint, record))


if __name__ == "__main__":
    main()
