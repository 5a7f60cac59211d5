from django.apps import AppConfig


class HivemindWebConfig(AppConfig):
    """The shell: registers every Celery task once all apps are loaded."""

    name = "hivemind_web"
    verbose_name = "Hivemind Web"

    def ready(self) -> None:
        from .celery import register_tasks

        register_tasks()
