"""APScheduler wiring: cron jobs, a cluster-wide leader lock and job-run history."""
