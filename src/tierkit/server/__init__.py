"""The Tierkit server: `pip install "tierkit[server]"`."""
