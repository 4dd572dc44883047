"""Pure policy: role expansion, SoD evaluation and the snapshot they read. No I/O."""
