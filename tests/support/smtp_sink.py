"""An SMTP sink for capsule's tests: aiosmtpd with STARTTLS (required) or implicit TLS.

Usage: smtp_sink.py starttls|implicit CERT KEY DIR
Prints the port it listens on (127.0.0.1), writes each mail to DIR/<n>.eml, and
stops when its standard input closes.
"""
import os
import socket
import ssl
import sys

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, folder):
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.folder, "%04d.eml" % self.count)
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode()
        with open(path + ".tmp", "wb") as f:
            f.write(content)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 OK: delivered to the sink"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    mode, cert, key, folder = sys.argv[1:5]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    port = free_port()
    if mode == "starttls":
        controller = Controller(
            Sink(folder), hostname="127.0.0.1", port=port,
            tls_context=context, require_starttls=True,
        )
    elif mode == "implicit":
        controller = Controller(
            Sink(folder), hostname="127.0.0.1", port=port, ssl_context=context,
        )
    else:
        raise SystemExit("mode is starttls or implicit")
    controller.start()
    print(port, flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
