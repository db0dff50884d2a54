"""Models of the qualification app (built in its own issue)."""
