"""The procurement module: Pending procurement approvals from the Oracle Fusion BPM worklist."""
