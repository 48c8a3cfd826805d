"""Simulators of Oracle Fusion, Yardi and FCM for the demo, the tests and the benchmarks."""
