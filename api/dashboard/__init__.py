"""The web dashboard: a static single-page app served by the API at ``/``."""

from api.dashboard.router import router

__all__ = ["router"]
