"""Diagnosis of failed traces: facts read from the steps (`facts.py`), the
offline diagnoser (`offline.py`) and the Claude diagnoser (`claude.py`). The
service that runs them and stores incidents is `failures/mining.py`."""
