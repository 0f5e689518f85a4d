"""lint's rules, one module per concern: every dialect's schema changes, PostgreSQL's
locks and rewrites, SQLite's and MySQL's limits, and a revision's style."""
