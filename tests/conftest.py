"""Its presence puts tests/ on sys.path, so test modules import shared helpers such as
``decoder_samples`` by name (the deterministic-CPU fixture lives in the root conftest.py)."""
