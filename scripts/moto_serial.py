"""A loopback S3 server for snap's tests: moto, handling one request at a
time so that conditional writes (If-None-Match / If-Match) are atomic (the
stock threaded moto_server lets two create-if-absent writers both win).
usage: python moto_serial.py HOST PORT"""
import os
import sys

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

try:  # moto >= 5.2
    from moto.moto_server.werkzeug_app import MotoRequestHandler as handler
except ImportError:
    handler = None

host, port = sys.argv[1], int(sys.argv[2])
os.environ.setdefault("MOTO_PORT", str(port))
app = DomainDispatcherApplication(create_backend_app)
run_simple(host, port, app, threaded=False, request_handler=handler)
