"""The Python producer and consumer of hookrelay's interop tests (tests/it/interop.rs), written
against fastavro, the Avro library Python services use. hookrelay's own code plays no part
here: this program reads the schema files in schemas/ and nothing else.

  fingerprints SCHEMA_DIR
      one line per schemas/*.avsc: file name, fastavro's CRC-64-AVRO fingerprint of its Parsing
      Canonical Form as a 64-bit number in 16 hex digits (as Java's parsingFingerprint64
      prints it), and the canonical form
  encode SCHEMA_DIR CASES_FILE
      CASES_FILE holds JSON lines {"schema":"license_event.v2","framing":"single"|"confluent",
      "confluent_id":N,"key":"...","record":{...}}; prints "KEY_HEX VALUE_HEX" per case: the
      datum written by fastavro.schemaless_writer, after a single-object header (C3 01 and
      fastavro's fingerprint, little-endian) or a Confluent header (00 and the id, big-endian)
  read SCHEMA_DIR
      stdin lines "NAME HEX" (NAME like "attempt", HEX a single-object record); each is read
      with the version whose fastavro fingerprint the header names, resolved into the newest
      schemas/NAME.vN.avsc, and printed as one JSON line ({"error": "..."} when it does not read)

fastavro has no single-object writer or reader of its own; the header is the specification's
(C3 01 + 8-byte CRC-64-AVRO, little-endian) with fastavro computing the fingerprint.
"""

import io
import json
import pathlib
import re
import struct
import sys

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

MAGIC = b"\xc3\x01"


def load(path):
    return fastavro.parse_schema(json.loads(pathlib.Path(path).read_text()))


def crc64(parsed):
    """fastavro's CRC-64-AVRO fingerprint: the header's 8 bytes (little-endian order)."""
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


def fingerprints(schema_dir):
    for path in sorted(pathlib.Path(schema_dir).glob("*.avsc")):
        parsed = load(path)
        number = int.from_bytes(crc64(parsed), "little")
        print(f"{path.name} {number:016x} {to_parsing_canonical_form(parsed)}")


def encode(schema_dir, cases_file):
    schemas = {}
    for line in pathlib.Path(cases_file).read_text().splitlines():
        if not line.strip():
            continue
        case = json.loads(line)
        name = case["schema"]
        if name not in schemas:
            schemas[name] = load(pathlib.Path(schema_dir) / f"{name}.avsc")
        parsed = schemas[name]
        datum = io.BytesIO()
        fastavro.schemaless_writer(datum, parsed, case["record"], strict_allow_default=True)
        if case["framing"] == "single":
            header = MAGIC + crc64(parsed)
        elif case["framing"] == "confluent":
            header = b"\x00" + struct.pack(">I", case["confluent_id"])
        else:
            raise SystemExit(f"unknown framing in {line}")
        print(case["key"].encode().hex(), (header + datum.getvalue()).hex())


def versions(schema_dir, name):
    found = {}
    for path in pathlib.Path(schema_dir).glob(f"{name}.v*.avsc"):
        m = re.fullmatch(re.escape(name) + r"\.v(\d+)\.avsc", path.name)
        if m:
            found[int(m.group(1))] = load(path)
    if not found:
        raise SystemExit(f"no schemas/{name}.vN.avsc")
    return [found[v] for v in sorted(found)]


def read(schema_dir):
    readers = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        name, hexed = line.split()
        try:
            if name not in readers:
                vs = versions(schema_dir, name)
                readers[name] = ({crc64(v): v for v in vs}, vs[-1])
            by_fingerprint, newest = readers[name]
            data = bytes.fromhex(hexed)
            if data[:2] != MAGIC:
                raise ValueError("not single-object encoded")
            writer = by_fingerprint.get(data[2:10])
            if writer is None:
                raise ValueError(f"unknown fingerprint {data[2:10].hex()}")
            body = io.BytesIO(data[10:])
            record = fastavro.schemaless_reader(body, writer, newest)
            if body.read(1):
                raise ValueError("bytes left after the datum")
            print(json.dumps(record, default=str))
        except Exception as e:  # one bad record is reported, the others still read
            print(json.dumps({"error": repr(e)}))


def main():
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "fingerprints":
        fingerprints(sys.argv[2])
    elif command == "encode":
        encode(sys.argv[2], sys.argv[3])
    elif command == "read":
        read(sys.argv[2])
    else:
        raise SystemExit("usage: interop.py fingerprints|encode|read ...")


if __name__ == "__main__":
    main()
