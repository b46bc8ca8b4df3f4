"""The local customer index: every Metronome customer copied into the dashboard's database,
so the customers page can do what the API cannot (names, typos, filters, sorting, totals).

- `search.py`: the search itself (filters, sorting, totals), answered from the database;
- `query.py`: `IndexQuery`, a search as the page's form validated it;
- `live.py`: a page of results re-read live from Metronome, so every value shown is current;
- `sync.py`: a sync run (one at a time), streaming both listings into `staging.py`'s tables
  (the rows from `rows.py`) and swapping them into the index;
- `refresh.py`: the page's "Update index now" button, a sync in a background thread.

The tables are models in customers/models.py (IndexedCustomer, IndexedNameWord, SyncRun).
"""
