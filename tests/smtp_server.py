"""A real SMTP server for the notifier's integration tests (aiosmtpd, an implementation
independent of the client under test), scripted from the command line.

Reports on stdout, one JSON object per line (flushed):
  {"event": "listening", "port": P}
  {"event": "data", "n": N, "message_id": "..."}        DATA received, before the reply
  {"event": "message", "n": N, "message_id": ..., "mail_from": ..., "rcpt_tos": [...],
   "auth_user": ... or null, "tls": bool, "data": "<the message>"}   accepted (250 sent)
  {"event": "rejected", "rcpt": ...} / {"event": "tempfail", "n": N}

Options:
  --port P               listen on 127.0.0.1:P (required; the test picks a free port)
  --tls none|starttls|implicit, --cert F --key F   TLS (STARTTLS is then required)
  --auth USER:PASS       require AUTH (PLAIN or LOGIN) with these credentials
  --hold-first SECONDS   wait this long before answering the first message's DATA
  --tempfail N           answer the first N messages' DATA with 451 (try again later)
  --reject-rcpt ADDR     answer RCPT TO:<ADDR> with 550 (permanent)
"""
import argparse
import asyncio
import email
import json
import ssl
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

_lock = threading.Lock()


def report(**event):
    with _lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


class Handler:
    def __init__(self, args):
        self.args = args
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.args.reject_rcpt and address.lower() == self.args.reject_rcpt.lower():
            report(event="rejected", rcpt=address)
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        n = self.count
        text = envelope.content.decode("utf-8", errors="replace")
        message_id = email.message_from_string(text).get("Message-ID")
        report(event="data", n=n, message_id=message_id)
        if n <= self.args.tempfail:
            report(event="tempfail", n=n)
            return "451 4.3.0 try again later"
        if n == 1 and self.args.hold_first > 0:
            await asyncio.sleep(self.args.hold_first)
        auth = session.auth_data
        user = None
        if isinstance(auth, LoginPassword):
            user = auth.login.decode()
        report(
            event="message",
            n=n,
            message_id=message_id,
            mail_from=envelope.mail_from,
            rcpt_tos=envelope.rcpt_tos,
            auth_user=user,
            tls=session.ssl is not None
            or server.transport.get_extra_info("sslcontext") is not None,
            data=text,
        )
        return "250 2.0.0 accepted"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--auth")
    p.add_argument("--hold-first", type=float, default=0.0)
    p.add_argument("--tempfail", type=int, default=0)
    p.add_argument("--reject-rcpt")
    args = p.parse_args()

    kwargs = {}
    ssl_context = None
    if args.tls != "none":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
        if args.tls == "starttls":
            kwargs.update(tls_context=ctx, require_starttls=True)
        else:
            ssl_context = ctx
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            return AuthResult(success=ok, auth_data=auth_data)

        kwargs.update(
            authenticator=authenticator,
            auth_required=True,
            # After STARTTLS; implicit TLS is TLS from the start (aiosmtpd cannot tell), and
            # plain SMTP is for the loopback-only test without TLS.
            auth_require_tls=args.tls == "starttls",
        )
    controller = Controller(
        Handler(args),
        hostname="127.0.0.1",
        port=args.port,
        ssl_context=ssl_context,
        server_hostname="localhost",
        **kwargs,
    )
    controller.start()
    report(event="listening", port=args.port)
    try:
        # Until the test kills us or closes stdin.
        while sys.stdin.read(1):
            pass
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
