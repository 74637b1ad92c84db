"""The measured corpus: common migration statements and what PostgreSQL really does with them.

`cases.py` lists the cases (pre-existing schema with rows, statement under test), `measure.py`
runs them on a real server and writes `measured.json`, which `tests/sql/test_corpus.py` compares
with the analyzer's predictions.
"""
