"""Whole workflows on one machine: functions linked by bucket folders, run as the cloud would.

``definition`` reads a workflow file (the multi-function format of deployment tools),
``schedule`` plans the uploads that start a run, ``deployment`` builds each function's
supervisor and local Batch backend on this machine, ``runner`` runs the workflow on the
local storage provider with a Lambda-like concurrency limit and local Batch compute
environments (``progress`` words each invocation's steps, ``invocation_logs`` keeps a log
per invocation), and ``timeline`` records and draws what ran where.
"""

from __future__ import annotations

from supervisor.workflow.definition import Workflow, WorkflowFunction, load_workflow
from supervisor.workflow.deployment import workflow_secrets
from supervisor.workflow.runner import RunResult, WorkflowRunner
from supervisor.workflow.schedule import Upload, schedule_uploads
from supervisor.workflow.timeline import Invocation, Timeline

__all__ = [
    "Invocation",
    "RunResult",
    "Timeline",
    "Upload",
    "Workflow",
    "WorkflowFunction",
    "WorkflowRunner",
    "load_workflow",
    "schedule_uploads",
    "workflow_secrets",
]
