"""The synthetic English->German demo corpus of `make demo` (lexicon, grammar, files)."""
