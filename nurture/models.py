"""Models of the nurture app (built in its own issue)."""
