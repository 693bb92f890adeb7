"""Two-stage recommendation: candidate sources, features as of a cut-off, a learned ranker."""
