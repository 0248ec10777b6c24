"""Finding loans: the header search and the search keys behind it (see search.keys)."""
