"""What web and worker processes load before they fork and serve (hivemind_web/warmup.py)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import get_resolver

from hivemind_web import gunicorn_conf, warmup


def test_gunicorn_loads_the_app_in_the_master_and_warms_each_worker():
    assert gunicorn_conf.preload_app is True
    assert callable(gunicorn_conf.on_starting) and callable(gunicorn_conf.post_worker_init)


@pytest.mark.django_db(transaction=True)
def test_warm_process_compiles_every_template_and_leaves_no_connection_to_share(monkeypatch):
    frozen: list[bool] = []
    monkeypatch.setattr(warmup.gc, "freeze", lambda: frozen.append(True))
    connection.ensure_connection()
    warmup.warm_process()  # raises on a template that does not compile
    # A forked child must open its own connection, never share the parent's.
    assert connection.connection is None or connection.connection.closed
    assert get_resolver()._populated
    assert frozen == [True]


def test_warm_inference_embeds_once():
    warmup.warm_inference()
