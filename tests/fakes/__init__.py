"""Reusable test doubles: recording fake executables (:mod:`tests.fakes.fakebin`)."""
