"""Security protocols shipped with the core (only the insecure plaintext one)."""
