"""Tests of the backend room (the CloudStation backend HTTP client)."""
