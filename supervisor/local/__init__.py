"""AWS on one machine: what a local run and a local workflow use in place of AWS services.

- ``batch``: a local AWS Batch (``LocalBatchBackend``), each job ``python -m supervisor``
  in a subprocess with the environment a Batch job gets (``definition_environment``).
- ``notifications``: bucket notifications of the local storage, one file per object
  written, which a local workflow turns into invocations (``notify``).

Nothing here is imported on the Lambda path: the entry points of a local run (the
``run`` and ``workflow`` commands) and the wiring of a job that announces its objects
import it when they need it.
"""
