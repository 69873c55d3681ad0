"""Storage: the store contracts (:mod:`.sessions`, :mod:`.users`), the built-in in-memory and
SQL stores, and the SQL store's migrations."""
