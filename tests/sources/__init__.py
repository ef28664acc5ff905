"""Tests of the sources room (git clone, upload download and safe extraction)."""
