"""A stand-in schema registry for hookrelay's registry tests: the schema-by-id endpoint of the
Confluent Schema Registry API (which Apicurio's /apis/ccompat/v7, Karapace and Redpanda serve
too), answering from a file of answers in that API's documented format, behind TLS and
authentication, with a switch that simulates an outage.

Reports on stdout, one JSON object per line (flushed):
  {"event": "listening", "port": P}
  {"event": "request", "path": "...", "authorized": bool, "status": S}

Options:
  --answers FILE      JSON object: schema id (as text) -> {"status": S, "body": <JSON>};
                      ids not in it answer 404 {"error_code": 40403, ...}
  --prefix PATH       the API's base path, e.g. /apis/ccompat/v7 (default: none)
  --basic USER:PASS   require HTTP basic authentication with these credentials
  --bearer TOKEN      require "Authorization: Bearer TOKEN"
  --cert F --key F    serve HTTPS with this certificate
  --mode up|503|drop  start answering normally, with 503, or by closing the connection

stdin takes one mode per line (up, 503, drop) to switch while running.
"""
import argparse
import base64
import json
import re
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_lock = threading.Lock()
state = {"mode": "up"}


def report(**event):
    with _lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", required=True)
    parser.add_argument("--prefix", default="")
    parser.add_argument("--basic")
    parser.add_argument("--bearer")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--mode", default="up", choices=["up", "503", "drop"])
    args = parser.parse_args()
    with open(args.answers) as f:
        answers = json.load(f)
    state["mode"] = args.mode
    expected_auth = None
    if args.basic:
        expected_auth = "Basic " + base64.b64encode(args.basic.encode()).decode()
    elif args.bearer:
        expected_auth = "Bearer " + args.bearer
    path_re = re.compile(re.escape(args.prefix.rstrip("/")) + r"/schemas/ids/(\d+)$")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            authorized = expected_auth is None or self.headers.get("Authorization") == expected_auth
            mode = state["mode"]
            if mode == "drop":
                report(event="request", path=self.path, authorized=authorized, status=0)
                self.close_connection = True
                self.connection.close()
                return
            if mode == "503":
                status, body = 503, {"error_code": 50302, "message": "Service unavailable"}
            elif not authorized:
                status, body = 401, {"error_code": 401, "message": "Unauthorized"}
            else:
                m = path_re.match(self.path.split("?")[0])
                if not m:
                    status, body = 404, {"error_code": 404, "message": "HTTP 404 Not Found"}
                else:
                    found = answers.get(m.group(1))
                    if found is None:
                        status = 404
                        body = {"error_code": 40403, "message": f"Schema {m.group(1)} not found"}
                    else:
                        status, body = found["status"], found["body"]
            report(event="request", path=self.path, authorized=authorized, status=status)
            self.answer(status, body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    report(event="listening", port=server.server_address[1])
    for line in sys.stdin:
        mode = line.strip()
        if mode in ("up", "503", "drop"):
            state["mode"] = mode
            report(event="mode", mode=mode)
    server.shutdown()


if __name__ == "__main__":
    main()
