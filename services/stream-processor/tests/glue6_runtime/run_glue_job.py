"""Start a Glue job script as AWS Glue 6.0 does, inside the Glue-like environment (tests only).

Glue runs the job's script as __main__ with the job's arguments. `awsglue` here is Glue's own
Python library (AWSGlueDataplanePython 6.0.0, so getResolvedOptions is the real one); only its
two classes backed by Glue's Scala runtime, GlueContext and Job, which AWS does not publish, are
replaced by this repository's stand-ins (tests/awsglue/context.py and job.py). SIGTERM stops the
streaming queries, so the script's awaitTermination returns and the job commits.
Usage: python -I run_glue_job.py SCRIPT STANDIN_DIR JOB_ARGUMENT...
Prints `signal_processor=<file>` before the script runs and `job_events=<json>` after it ends.
"""

from __future__ import annotations

import importlib.util
import json
import runpy
import signal
import sys
import threading
from types import FrameType, ModuleType


def load(path: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None, path
    assert spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stop_queries() -> None:
    from pyspark.sql import SparkSession

    for query in SparkSession.builder.getOrCreate().streams.active:
        query.stop()


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    threading.Thread(target=stop_queries, daemon=True).start()


def main() -> None:
    script, standins, *job_arguments = sys.argv[1:]
    # Glue's library as installed; awsglue.utils (getResolvedOptions) stays the real one
    import awsglue.context  # pants: no-infer-dep
    import awsglue.job  # pants: no-infer-dep
    import awsglue.utils  # pants: no-infer-dep

    standin_context = load(f"{standins}/context.py", "standin_context")
    standin_job = load(f"{standins}/job.py", "standin_job")
    awsglue.context.GlueContext = standin_context.GlueContext  # type: ignore[misc]
    awsglue.job.Job = standin_job.Job  # type: ignore[misc]
    import signal_processor

    print(f"signal_processor={signal_processor.__file__}", flush=True)
    signal.signal(signal.SIGTERM, on_sigterm)
    sys.argv = [script, *job_arguments]
    runpy.run_path(script, run_name="__main__")
    print(f"job_events={json.dumps(standin_job.EVENTS)}", flush=True)


if __name__ == "__main__":
    main()
