"""What a workflow run says about an invocation: its steps, from the Lambda run to the Batch
job, each worded once in the order they happened."""

from __future__ import annotations

from supervisor.workflow.timeline import Invocation

__all__ = ["steps"]


def steps(invocation: Invocation) -> list[tuple[str, str]]:
    """The steps the invocation has reached, as ``(step, message)`` in order."""
    name = f"{invocation.function} #{invocation.number}"
    reached: list[tuple[str, str]] = []
    if invocation.status != "queued":
        reached.append(("running", f"{name}: running in Lambda"))
    ended = _lambda_end(invocation, name)
    if ended is not None:
        reached.append(("ended", ended))
        if invocation.job_id is not None:
            reached += _batch_steps(invocation, name)
    return reached


def _lambda_end(invocation: Invocation, name: str) -> str | None:
    """How the Lambda run ended: done, failed or handed to Batch (None while it runs)."""
    if invocation.lambda_end is None or invocation.lambda_start is None:
        return None
    took = f"{invocation.lambda_end - invocation.lambda_start:.2f} s"
    if invocation.status == "succeeded":
        return f"{name}: done in Lambda in {took}, {len(invocation.uploaded)} file(s) written"
    if invocation.status == "failed":
        return f"{name}: FAILED in Lambda after {took}: {invocation.error}"
    if invocation.job_id is not None:
        return f"{name}: handed to Batch after {took}: job {invocation.job_id}"
    return None


def _batch_steps(invocation: Invocation, name: str) -> list[tuple[str, str]]:
    """Where the invocation's Batch job is: pending, running, then succeeded or failed."""
    reached: list[tuple[str, str]] = []
    if invocation.batch_started is not None:
        reached.append(("job-running", f"{name}: Batch job running"))
    elif invocation.job_status == "RUNNABLE":
        reached.append(("job-pending", f"{name}: Batch job pending in the job queue"))
    if invocation.job_status == "SUCCEEDED":
        reached.append(("job-ended", f"{name}: Batch job succeeded"))
    elif invocation.job_status == "FAILED":
        reached.append(
            (
                "job-ended",
                f"{name}: Batch job FAILED (exit code {invocation.exit_code}): "
                f"{invocation.error or 'see its log'} {invocation.job_log}",
            )
        )
    return reached
