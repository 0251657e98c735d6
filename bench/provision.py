#!/usr/bin/env python3
"""Replaced by bench/pods.py (pods, shared apt cache, 30-pod validation); kept so the old
command still works: it runs bench/pods.py with the same arguments."""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    pods = Path(__file__).resolve().parent / "pods.py"
    os.execv(sys.executable, [sys.executable, str(pods), *sys.argv[1:]])
