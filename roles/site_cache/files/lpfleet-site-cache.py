"""lpfleet-site-cache: serve this host's Ollama model store, read-only, to the other hosts of its site.

Run by the systemd unit lpfleet-site-cache.service, which the lpfleet.ai.site_cache role installs:

    python3 lpfleet-site-cache.py --models /var/lib/docker/volumes/ollama/_data/models \
        --bind 10.0.0.5 --port 11480

Answers GET and HEAD for two kinds of path and nothing else (no listing, no write):

    /manifests/<host>/<namespace>/<model>/<tag>   a manifest file of the store
    /blobs/sha256-<64 hex digits>                  a complete blob (never a *-partial download)

Any other path, a path with `..` or a file that is missing answers 404. The other hosts copy a model
with lpfleet.ai.site_model, which checks every blob's sha256 against the manifest: this server
only reads files. One line per request goes to stderr (the journal). Only the standard library.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BLOB_PATH = re.compile(r"^/blobs/(sha256-[0-9a-f]{64})$")
MANIFEST_PATH = re.compile(r"^/manifests/((?:[A-Za-z0-9_.:-]+/){3}[A-Za-z0-9_.-]+)$")
CHUNK = 1024 * 1024


def store_file(models: str, url_path: str) -> str | None:
    """The file of the store a request path names, or None when it names none this server gives."""
    path = url_path.split("?", 1)[0]
    blob = BLOB_PATH.match(path)
    if blob:
        candidate = os.path.join(models, "blobs", blob.group(1))
    else:
        manifest = MANIFEST_PATH.match(path)
        if not manifest or any(part in ("", ".", "..") for part in manifest.group(1).split("/")):
            return None
        candidate = os.path.join(models, "manifests", *manifest.group(1).split("/"))
    return candidate if os.path.isfile(candidate) else None


class Handler(BaseHTTPRequestHandler):
    """GET and HEAD of the store's manifests and blobs."""

    protocol_version = "HTTP/1.1"
    server_version = "lpfleet-site-cache"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class names it so
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _answer(self, send_body: bool) -> None:
        path = store_file(self.server.models, self.path)  # type: ignore[attr-defined]
        if path is None:
            self.send_error(404, "not in this site cache")
            return
        try:
            handle = open(path, "rb")
        except OSError:
            self.send_error(404, "not in this site cache")
            return
        with handle:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(os.fstat(handle.fileno()).st_size))
            self.end_headers()
            if send_body:
                shutil.copyfileobj(handle, self.wfile, CHUNK)

    def do_GET(self) -> None:  # noqa: N802 - the base class names it so
        self._answer(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802 - the base class names it so
        self._answer(send_body=False)


def make_server(models: str, bind: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((bind, port), Handler)
    server.daemon_threads = True
    server.models = models  # type: ignore[attr-defined]
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, help="Ollama's models directory (manifests/ and blobs/)")
    parser.add_argument("--bind", required=True, help="address to listen on")
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    args = parser.parse_args(argv)
    server = make_server(args.models, args.bind, args.port)
    sys.stderr.write(f"serving {args.models} on {args.bind}:{args.port}\n")
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
