"""A static HTTP server on 127.0.0.1 for the download tests of the workflow."""
from __future__ import annotations

import contextlib
import functools
import http.server
import threading


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):   # keep the test output quiet
        pass


@contextlib.contextmanager
def serve(root):
    """Serve folder ``root``; yields the base URL (``http://127.0.0.1:PORT``)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
