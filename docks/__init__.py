"""The dock-side runtime: scanning dump folders, sweeps, the watchdog watcher."""
