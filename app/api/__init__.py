"""The FastAPI service (see `app.api.main.create_app`)."""
