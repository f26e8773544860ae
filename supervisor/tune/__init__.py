"""``python -m supervisor tune``: measure a function at Lambda's memory sizes on this host and
recommend its memory size and execution mode.

``model`` holds the data (samples, targets, runs, measurements); ``measure`` runs the
function's script through the pipeline in a cgroup per target (``supervisor.lambda_sizes``);
``prices`` reads the dated price file and does the billing arithmetic; ``fit`` fits duration
against input size; ``advice`` picks the memory size by a strategy and the execution mode by
its rule; ``chart`` draws ``tune.png``; ``report`` prints the tables and writes ``tune.json``;
``apply`` writes the recommendation into the definition.
"""
