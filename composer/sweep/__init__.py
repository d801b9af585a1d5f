"""Many runs of one study: a grid's plan (plan.py), its directory and tables (directory.py), each run as its own
`composer run` process (jobs.py), and Optuna searches (search.py)."""
