from django.apps import AppConfig
from django.db.backends.signals import connection_created


class FailuresConfig(AppConfig):
    name = "failures"

    def ready(self) -> None:
        connection_created.connect(_hnsw_search_breadth, dispatch_uid="failures-hnsw-ef-search")


def _hnsw_search_breadth(sender, connection, **kwargs) -> None:  # type: ignore[no-untyped-def]
    """Every connection searches the HNSW index as wide as HIVEMIND_HNSW_EF_SEARCH
    (pgvector's default is 40; recall measured in bench/search.py). Set once per
    connection, so a search is one statement (no transaction, no SET LOCAL)."""
    from django.conf import settings

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('hnsw.ef_search', %s, false)",
                       [str(settings.HIVEMIND_HNSW_EF_SEARCH)])  # fmt: skip
