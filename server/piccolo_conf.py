"""Piccolo's configuration module (PICCOLO_CONF=server.piccolo_conf)."""

from piccolo.conf.apps import AppRegistry

from server.db import make_engine
from server.settings import get_settings

DB = make_engine(get_settings().database_url)

APP_REGISTRY = AppRegistry(apps=["server.piccolo_app"])
