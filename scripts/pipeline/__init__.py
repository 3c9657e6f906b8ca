"""Python side of the contextpool-mt scripts (data, evaluation, reports)."""
