"""The library catalogue: books and their reviews."""
