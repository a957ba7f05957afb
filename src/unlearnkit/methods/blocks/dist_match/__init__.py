"""The building blocks of ``dist_match``: two-sample statistics and targets, retention terms, streams."""
