"""`python -m bench.stress`: the harness, or with `worker` first one worker process."""

from bench.stress.cli import main

if __name__ == "__main__":
    main()
