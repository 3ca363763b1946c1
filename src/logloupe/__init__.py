"""LogLoupe: an AI-assisted log platform that runs on one machine by default."""

__version__ = "0.1.0"
