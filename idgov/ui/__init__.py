"""The web pages: server-rendered Jinja2 templates over the same services and the same
``Caller`` as the API. ``idgov.ui.app.install_pages(app)`` mounts them; see the module
docstrings of ``app`` (mounting, the demo sign-in rule), ``session`` (the signed cookie,
CSRF, notices), ``deps`` (the page caller, ``PageRoute``), ``render`` and ``registry``."""
