import sys
from pathlib import Path

# Let the suite import the app module next to it (pytest runs in importlib mode here).
sys.path.insert(0, str(Path(__file__).parent))
