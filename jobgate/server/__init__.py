"""Serving the app: uvicorn's configuration and the WebSocket protocol it runs."""
