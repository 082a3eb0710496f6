from mynumber.migrations import run_env

run_env()
