"""The page routers of the identity core: each module has ``router`` (built with
``idgov.ui.app.page_router()``); ``install_pages`` mounts every module found here."""
