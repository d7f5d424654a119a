"""A job's web app for the session tests, standard library only (it runs on the sandbox's own
Python): a page naming the job and the path it was asked for, a WebSocket echo at `ws`, and
`bytes/N` (N bytes, for the benchmark).
It holds no curly brace: in a command, the gateway takes one for a parameter's placeholder.

    python3 job_server.py PORT
"""

import base64
import hashlib
import os
import struct
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self.echo()
            return
        if self.path.startswith("/bytes/"):
            self.stream(int(self.path.split("/")[2]))
            return
        job, rank = os.environ["JOBGATE_JOB_ID"], os.environ["JOBGATE_RANK"]
        body = "".join(
            [
                "<!doctype html><title>Job " + job + "</title>",
                "<h1 id=served>Served by job " + job + ", replica " + rank + "</h1>",
                "<p>Path: <code id=path>" + self.path + "</code></p>",
                "<p>Authorization: <code id=authorization>",
                self.headers.get("Authorization", "none") + "</code></p>",
                "<p>Cookie: <code id=cookie>" + self.headers.get("Cookie", "none") + "</code></p>",
            ]
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def stream(self, size: int) -> None:
        """`size` bytes, in chunks of 1 MiB (for the benchmark's download)."""
        chunk = b"x" * (1 << 20)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        while size > 0:
            self.wfile.write(chunk[: min(size, len(chunk))])
            size -= len(chunk)

    def echo(self) -> None:
        key = self.headers["Sec-WebSocket-Key"]
        # RFC 6455's handshake is SHA-1 by definition (no security rests on it).
        digest = hashlib.sha1((key + GUID).encode(), usedforsecurity=False).digest()
        accept = base64.b64encode(digest).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self.rfile.read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self.rfile.read(8))
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            if opcode == 8:  # close: answer it and end
                self.send_frame(8, data[:2])
                return
            if opcode == 9:  # ping
                self.send_frame(10, data)
            elif opcode == 1:
                self.send_frame(1, b"echo: " + data)

    def send_frame(self, opcode: int, data: bytes) -> None:
        size = len(data)
        if size < 126:
            head = bytes([0x80 | opcode, size])
        elif size < 65536:
            head = bytes([0x80 | opcode, 126]) + struct.pack("!H", size)
        else:
            head = bytes([0x80 | opcode, 127]) + struct.pack("!Q", size)
        self.wfile.write(head + data)
        self.wfile.flush()


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
