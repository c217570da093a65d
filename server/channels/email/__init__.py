"""Email channel: inbound (SMTP listener and HTTP endpoint), parsing, threading, outbound."""
