"""Benchmark serverless-supervisor ("ours") against faas-supervisor 1.5.8 ("theirs").

``bench/run.py`` is the command; this package is what it runs:

| module | what it owns |
|---|---|
| ``settings`` | the plan of each run (full, quick), the constants, the scripts, the notes |
| ``interpreters`` | the interpreters the drivers run under (faas-supervisor's own environment) |
| ``layer`` | ours' packages as a Lambda layer: built by ``layer/build.py``, cached |
| ``session`` | one run: the moto server, the clients, the Batch queue, what is on the server |
| ``drivers`` | starting a driver (``bench/drivers/``) in a clean environment, reading its JSON |
| ``proxy`` | the proxy (``bench/latency_proxy.py``): a delay, a bandwidth per connection |
| ``cases`` | the seven cases, one function each |
| ``sizes`` | the cases at Lambda memory sizes (``--lambda-memory``): a cgroup per driver |
| ``report`` | statistics, the rows of the table, the machine's description, the table |
| ``cli`` | the options and the run from start to results |

One moto server (S3, Batch, IAM) on a free loopback port serves both implementations in the
same run.  Each implementation is measured by a driver (``bench/drivers/ours.py``,
``bench/drivers/theirs.py``) run under its own interpreter, which calls the Lambda handler
in-process with a fake Lambda context and reports timings as JSON; the runner prepares the
data, starts the drivers, checks what they did on the server (jobs, uploaded objects) and
prints a table of medians with the ratio ours/theirs.  The same results go to
``bench/results.json`` (``--output``).
"""
