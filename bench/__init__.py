"""Load and micro benchmarks of flask-passkey (``make bench``; see bench/RESULTS.md)."""
