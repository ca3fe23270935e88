"""The archivists' web application (FastAPI + Jinja2 + vendored htmx): ``app.create_app``
over one Instance; the routes by page (``pages``: sign-in and search; ``media``; ``cases``;
``audit``) and the JSON API (``api`` and each page's ``/api/v1`` route); what only the web
has in ``security`` (cookies, CSRF, headers) and ``errors`` (the one table of statuses)."""
