import os
import sys

# Shared test helpers (tiny model configs, tiny data writers) live beside
# this file; make them importable from every test folder.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
