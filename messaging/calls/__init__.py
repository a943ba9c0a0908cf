"""Voice and video calls in conversations: signalling, the state machine, call records, and the
media relay (``media.py``). See docs/realtime.md ("Calls") and docs/ARCHITECTURE.md."""
