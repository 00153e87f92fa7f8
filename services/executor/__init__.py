"""The executor: runs the jobs rules make (claim, steps, retries, dead letters) and the
webhook endpoints they post to."""
