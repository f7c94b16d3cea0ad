"""Test helpers and the compliance suites every plugin (ours or third-party) runs.

Import the suite modules directly (``p2pkit.testing.muxer_suite`` etc.); this package
imports nothing at load time so that importing p2pkit never pulls in pytest.
"""
