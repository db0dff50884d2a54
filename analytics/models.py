"""Models of the analytics app (built in its own issue)."""
