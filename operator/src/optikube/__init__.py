"""optikube: make models smaller, faster and better, from Python.

    from optikube import Client
    job = Client.local(output_dir="runs").submit("examples/quickstart.yaml", smoke=True)
    job.wait(); print(job.best_trial().values)

`Client.cluster(namespace=...)` does the same through the operator on Kubernetes (docs/client.md).
"""

from optikube_operator import __version__, client
from optikube_operator.client import *  # noqa: F403  (the client's public names, listed once there)

__all__ = [*client.__all__, "__version__"]
