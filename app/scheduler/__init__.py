"""The scheduler: APScheduler fires the modules' crons, a run row per tick and organisation
makes each tick happen once cluster-wide, and runs fan out as durable deliveries.

Read ``service.py`` for the rules and ``engine.py`` for the APScheduler wiring.
"""
