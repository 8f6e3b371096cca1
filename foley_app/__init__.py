"""The Foley editor (Qt): open a video, mark segments, generate Foley with the engine, audition, splice, export."""

from foley_app import qt_compat  # noqa: F401  (before any signal is emitted: PySide 6.12's emit steals True)
