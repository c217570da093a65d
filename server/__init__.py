"""Kizuna: self-hosted support desk and community platform."""

import os

# Piccolo finds its configuration through this variable; every entry point imports `server`.
os.environ.setdefault("PICCOLO_CONF", "server.piccolo_conf")
