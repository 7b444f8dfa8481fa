"""Tiny GRIP origin for the Pushpin peer (stdlib only).

GET /events/<topic> answers with a stream hold on channel <topic>; Pushpin keeps the client
connection and writes whatever is published to the channel. No history: a Last-Event-ID is
ignored (Pushpin keeps none either). Usage: python3 origin.py PORT
"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        topic = self.path.split("?", 1)[0].rsplit("/", 1)[-1] or "t0"
        body = b": ok\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Grip-Hold", "stream")
        self.send_header("Grip-Channel", topic)
        self.send_header("Grip-Keep-Alive", ":\\n\\n; format=cstring; timeout=20")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 4096
    daemon_threads = True


if __name__ == "__main__":
    port = int(sys.argv[1])
    Server(("127.0.0.1", port), Handler).serve_forever()
